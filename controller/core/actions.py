"""The vocabulary of the decision: what it is given (Observation), what it answers (Decision),
the actions and reads it asks for, and the small readers every rung shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core import budget, results
from controller.core.podsettings import PodSettings
from controller.core.security import PolicySet
from controller.core.status import status_patch
from controller.core.tails import LogTail
from taskrun.api import (
    DEFAULT_LOG_TAIL_BYTES,
    DEFAULT_LOG_TAIL_LINES,
    DEFAULT_MAX_HOLD_SECONDS,
    DEFAULT_MAX_RESULT_BYTES,
    Phase,
    Reason,
)

Obj = dict[str, Any]


DEFAULT_PENDING_REPORT_SECONDS = 2.0


@dataclass(frozen=True)
class CoreSettings:
    """The controller's configuration as far as decisions go."""

    pod: PodSettings = field(default_factory=PodSettings)
    policies: PolicySet = field(default_factory=PolicySet)
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    log_tail_lines: int = DEFAULT_LOG_TAIL_LINES
    log_tail_bytes: int = DEFAULT_LOG_TAIL_BYTES
    max_hold_seconds: float = DEFAULT_MAX_HOLD_SECONDS
    # A first attempt's pod that starts within this long is reported Running directly: no
    # Pending status write (and Event) for the usual case. 0 reports Pending at once.
    pending_report_seconds: float = DEFAULT_PENDING_REPORT_SECONDS
    # The whole status, as the API server encodes it, stays under this (core/budget.py).
    max_status_bytes: int = budget.DEFAULT_MAX_STATUS_BYTES


@dataclass(frozen=True)
class CreatePod:
    """Create the pod of ``attempt``; a 409 is resolved by adoption or PodNameConflict."""

    pod: Obj
    attempt: int


@dataclass(frozen=True)
class DeletePod:
    """Delete the pod if its uid still matches, with this grace period (None: the pod's)."""

    name: str
    uid: str | None
    grace_seconds: int | None = None


@dataclass(frozen=True)
class PatchStatus:
    """Merge-patch the TaskRun's status with ``patch``."""

    patch: Obj


@dataclass(frozen=True)
class EmitEvent:
    """Record a v1 Event on the TaskRun."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class DeleteTaskRun:
    """Delete the TaskRun itself (ttlSecondsAfterFinished)."""

    uid: str | None


@dataclass(frozen=True)
class ReadLogTail:
    """Keep the last ``lines`` lines and at most ``max_bytes`` of a container's log."""

    pod: str
    container: str
    lines: int
    max_bytes: int
    # The container had stopped when the read was asked for: its log can grow no more, so
    # a tail that is not cut is its whole log (status.logs.complete).
    stopped: bool = False


@dataclass(frozen=True)
class ReadResult:
    """Read the result: the sidecar's log (native), or ``cat`` in the sidecar (exec mode)."""

    pod: str
    container: str
    size: int = 0
    sha256: str = ""
    via_exec: bool = False


@dataclass(frozen=True)
class StopSidecar:
    """Exec mode: end KPO's sleeping sidecar so a kept pod completes (SIGINT to pid 1)."""

    pod: str
    container: str
    # The pod's uid: one SIGINT per pod, however many reconciles see it before its exit.
    uid: str | None = None


@dataclass(frozen=True)
class ReadEvents:
    """List the pod's events (its warnings go into status.warnings)."""

    pod: str
    uid: str | None


Action = CreatePod | DeletePod | PatchStatus | EmitEvent | DeleteTaskRun | StopSidecar


Read = ReadLogTail | ReadResult | ReadEvents


@dataclass(frozen=True)
class Gathered:
    """The answers to a decision's Read* actions."""

    logs: Mapping[str, LogTail] = field(default_factory=dict)
    result: results.Result | None = None
    events: list[Mapping[str, Any]] = field(default_factory=list)
    # The containers of ``logs`` that had stopped before their tail was read (ReadLogTail's
    # ``stopped``): what was read may be kept over reconciles, so this travels with it.
    stopped: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Observation:
    """The world as the caller saw it: the TaskRun, the current attempt's pod, the time."""

    taskrun: Mapping[str, Any]
    pod: Mapping[str, Any] | None
    now: datetime
    gathered: Gathered | None = None
    # A pod create refused for good (InvalidSpec, PolicyDenied), or a pod of our name that
    # is not ours (PodNameConflict).
    create_error: tuple[Reason, str] | None = None
    # A pod create refused for now (403 from a missing service account or a quota, other
    # 4xx that can heal): the API server's words.
    create_refused: str | None = None
    # The API server refused a status write as too large: its words.
    status_refused: str | None = None
    # The TaskRun's own pods (``naming.owns``) other than ``pod``, as the cache shows them:
    # earlier attempts' pods a refused delete or a restart left behind (core/earlier.py).
    other_pods: tuple[Mapping[str, Any], ...] = ()
    # The API server refused the delete of an earlier attempt's pod (``other_pods``): the
    # pod's name and the API server's code and words (core/earlier.py says so in status).
    delete_refused: tuple[str, str] | None = None


@dataclass(frozen=True)
class Decision:
    """What to do now, in order, and when to look again (None: on the next change)."""

    actions: list[Action] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    wake_at: datetime | None = None


def write(current: Mapping[str, Any], desired: Mapping[str, Any], obs: Observation) -> list[Action]:
    patch = status_patch(current, desired)
    if patch is None:
        return []
    actions: list[Action] = [PatchStatus(patch=patch)]
    reason = desired.get("reason")
    if reason != current.get("reason") and reason is not None:
        failed = desired.get("phase") == str(Phase.FAILED) or reason in (
            Reason.RETRYING,
            Reason.FAILED_CREATE,
        )
        message = (
            str(desired.get("message") or "").splitlines()[0] if desired.get("message") else ""
        )
        actions.append(EmitEvent("Warning" if failed else "Normal", str(reason), message))
    return actions


def delete_pod(pod: Mapping[str, Any], grace: int | None) -> DeletePod:
    meta = pod.get("metadata") or {}
    return DeletePod(name=meta.get("name", ""), uid=meta.get("uid"), grace_seconds=grace)


def deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def status_of(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    """The controller's status; {} until its first write.

    A status without a phase is the CRD's default (taskrun/api/crd.py DEFAULT_STATUS, which
    the API server fills in on every read until the first write): not a report of ours, so
    its conditions' times and reasons must not carry over into the first real one.
    """
    status = taskrun.get("status")
    return status if isinstance(status, Mapping) and status.get("phase") else {}


def spec_of(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = taskrun.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def meta_of(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    return taskrun.get("metadata") or {}


def name_of(taskrun: Mapping[str, Any]) -> str:
    return str(meta_of(taskrun).get("name", ""))


def phase_of(status: Mapping[str, Any]) -> Phase | None:
    try:
        return Phase(status.get("phase"))
    except ValueError:
        return None
