"""kstatus's generic rules, ported from sigs.k8s.io/cli-utils (commit 5895ad6, 2025):
pkg/kstatus/status/status.go (Compute, checkReadyCondition), generic.go
(checkGenericProperties, checkGeneration) and util.go (newInProgressStatus).

A TaskRun is no built-in kind, so no legacy rule (core.go's legacyTypes) applies: Compute
runs the generic checks, then the Ready condition, then calls the object Current. Flux's
kustomize-controller (`wait: true`, healthChecks) and kpt read a resource through these
rules: Current is ready, Failed fails the apply, InProgress keeps waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IN_PROGRESS = "InProgress"
FAILED = "Failed"
CURRENT = "Current"
TERMINATING = "Terminating"


def compute(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(status, message) as kstatus.Compute gives them."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    # checkGenericProperties: deletion first.
    if meta.get("deletionTimestamp"):
        return TERMINATING, "Resource scheduled for deletion"
    # checkGeneration: only when both fields exist.
    generation = meta.get("generation")
    observed = status.get("observedGeneration") if isinstance(status, Mapping) else None
    if generation is not None and observed is not None and observed != generation:
        kind = obj.get("kind", "")
        return (
            IN_PROGRESS,
            f"{kind} generation is {generation}, but latest observed generation is {observed}",
        )
    conditions = status.get("conditions") or [] if isinstance(status, Mapping) else []
    # The standard conditions decide alone, in list order.
    for cond in conditions:
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return IN_PROGRESS, str(cond.get("message") or "")
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return FAILED, str(cond.get("message") or "")
    # checkReadyCondition.
    for cond in conditions:
        if cond.get("type") != "Ready":
            continue
        if cond.get("status") == "True":
            return CURRENT, "Resource is Ready"
        if cond.get("status") in ("False", "Unknown"):
            return IN_PROGRESS, str(cond.get("message") or "")
    return CURRENT, "Resource is current"


def flux_cel(obj: Mapping[str, Any], exprs: Mapping[str, str]) -> str:
    """Flux's CEL status reader (RFC-0009, kustomize-controller 1.5+): the generation
    check, then inProgress, failed and current in that order, the first true one wins; none
    true means InProgress. An evaluation error keeps Flux waiting, as InProgress does."""
    import celpy

    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if observed is not None and observed != meta.get("generation"):
        return IN_PROGRESS
    env = celpy.Environment()
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    for key, result in (("inProgress", IN_PROGRESS), ("failed", FAILED), ("current", CURRENT)):
        if not exprs.get(key):
            continue
        try:
            if env.program(env.compile(exprs[key])).evaluate(activation):
                return result
        except celpy.CELEvalError:
            return IN_PROGRESS
    return IN_PROGRESS
