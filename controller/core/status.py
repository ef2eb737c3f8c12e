"""The status the controller writes (Tekton's MakeTaskRunStatus idea): one builder,
``with_phase``, typed by TaskRunStatus's wire names, and the merge patch from the status as
it is to the one wanted.

Pure functions of the current status, the decision and the time, so the status can always
be recomputed after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict, Unpack

from controller.core.clock import format_time, parse_optional
from taskrun.api import CONDITION_SUCCEEDED, Phase, format_duration
from taskrun.api.reasons import CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED

Obj = dict[str, Any]

OWN_CONDITIONS = frozenset(
    {CONDITION_SUCCEEDED, CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED}
)


class ConditionFields(TypedDict):
    """A ``Condition`` of TaskRunStatus as written (wire names)."""

    type: str
    status: str
    reason: str
    message: str
    lastTransitionTime: str


class LogsFields(TypedDict, total=False):
    """``status.logs`` (``LogsStatus``) as written."""

    namespace: str
    pod: str
    container: str
    command: str
    tail: str
    tailLines: int
    truncated: bool
    complete: bool


class WarningFields(TypedDict, total=False):
    """One of ``status.warnings`` (``WarningEvent``) as written."""

    reason: str
    message: str
    count: int
    lastTimestamp: str


class AttemptFields(TypedDict, total=False):
    """One of ``status.history`` (``AttemptRecord``) as written."""

    attempt: int
    podName: str
    phase: str
    reason: str
    message: str
    exitCode: int
    startTime: str
    completionTime: str


class StatusFields(TypedDict, total=False):
    """TaskRunStatus's fields by wire name, but for phase, reason, message and conditions
    (which ``with_phase`` writes from its arguments). None removes a field.

    A test holds these names to the model's (and the nested ones to theirs): a field added
    to TaskRunStatus and not here, or misspelt here, fails it, and mypy checks every caller.
    """

    observedGeneration: int | None
    podName: str | None
    attempts: int | None
    startTime: str | None
    completionTime: str | None
    duration: str | None
    exitCode: int | None
    result: str | None
    resultSize: int | None
    logs: LogsFields | None
    warnings: list[WarningFields] | None
    history: list[AttemptFields] | None


def condition_status(phase: Phase) -> str:
    """The Succeeded condition's status for a phase."""
    if phase in (Phase.SUCCEEDED, Phase.SKIPPED):
        return "True"
    if phase in (Phase.FAILED, Phase.CANCELLED):
        return "False"
    return "Unknown"


def succeeded_condition(
    phase: Phase,
    reason: str,
    message: str,
    previous: list[Mapping[str, Any]] | None,
    now: datetime,
) -> ConditionFields:
    """The Succeeded condition; lastTransitionTime moves only when its status changes."""
    return _condition(CONDITION_SUCCEEDED, condition_status(phase), reason, message, previous, now)


def kstatus_conditions(
    phase: Phase,
    reason: str,
    message: str,
    previous: list[Mapping[str, Any]] | None,
    now: datetime,
) -> list[ConditionFields]:
    """The conditions kstatus reads (Flux `wait`, kpt, cli-utils; docs/gitops.md).

    Without them kstatus calls every TaskRun Current, a running one included. Reconciling
    and Stalled follow its abnormal-true convention (present only while true): Reconciling
    while the run goes on (InProgress), Stalled when it ended Failed or Cancelled (Failed);
    Ready mirrors Succeeded for the tools that look for Ready.
    """
    out = [_condition(CONDITION_READY, condition_status(phase), reason, message, previous, now)]
    if not phase.finished:
        out.append(_condition(CONDITION_RECONCILING, "True", reason, message, previous, now))
    elif phase in (Phase.FAILED, Phase.CANCELLED):
        out.append(_condition(CONDITION_STALLED, "True", reason, message, previous, now))
    return out


def _condition(
    type_: str,
    status: str,
    reason: str,
    message: str,
    previous: list[Mapping[str, Any]] | None,
    now: datetime,
) -> ConditionFields:
    old = next((c for c in previous or [] if c.get("type") == type_), None)
    since = (
        old["lastTransitionTime"]
        if old and old.get("status") == status and old.get("lastTransitionTime")
        else format_time(now)
    )
    return {
        "type": type_,
        "status": status,
        "reason": str(reason),
        "message": message,
        "lastTransitionTime": since,
    }


def with_phase(
    current: Mapping[str, Any],
    phase: Phase,
    reason: str,
    message: str,
    now: datetime,
    **fields: Unpack[StatusFields],
) -> Obj:
    """The status builder: ``current`` moved to a phase (phase, reason, message, conditions,
    and completionTime and duration once finished), plus ``fields``. A field given as None is
    removed. Every status the controller writes is built here (``actions.write`` patches
    from ``current`` to it), and is a valid TaskRunStatus (tests/unit/controller/
    test_status_model.py).
    """
    desired: Obj = dict(current)
    desired.update(
        phase=str(phase),
        reason=str(reason),
        message=message,
        conditions=[
            *(c for c in current.get("conditions") or [] if c.get("type") not in OWN_CONDITIONS),
            succeeded_condition(phase, reason, message, current.get("conditions"), now),
            *kstatus_conditions(phase, reason, message, current.get("conditions"), now),
        ],
    )
    for key, value in fields.items():
        if value is None:
            desired.pop(key, None)
        else:
            desired[key] = value
    if phase.finished:
        started = parse_optional(desired.get("startTime"))
        desired.setdefault("completionTime", format_time(now))
        finished = parse_optional(desired["completionTime"]) or now
        if started is not None:
            desired["duration"] = format_duration((finished - started).total_seconds())
    return desired


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj | None:
    """The JSON merge patch from ``current`` to ``desired``; None when they are equal."""
    patch: Obj = {}
    for key in current.keys() - desired.keys():
        patch[key] = None
    for key, value in desired.items():
        old = current.get(key)
        if old == value:
            continue
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            patch[key] = status_patch(old, value)
        else:
            patch[key] = value
    return patch or None
