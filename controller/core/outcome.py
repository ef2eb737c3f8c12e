"""Judge an attempt from its pod (Tekton's getFailureReason idea, plus KPO's fail-fast rules).

Pure functions of the pod and the typed spec: the same pod always gets the same Outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.core.clock import parse_optional
from taskrun.api import Phase, Reason, TaskRunSpec

FATAL_PULL_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
RETRYABLE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})
# KPO's markers of an image pull error that may go away on its own (notes.md).
TRANSIENT_PULL_MARKERS = (
    "pull qps exceeded",
    "rate limit",
    "too many requests",
    "quota exceeded",
    "temporarily unavailable",
    "timeout",
    "account limit",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
)
NODE_LOST_REASONS = frozenset({"NodeLost", "NodeShutdown", "Terminated"})


@dataclass(frozen=True)
class Outcome:
    """Where one attempt stands, judged from its pod alone.

    ``pod_done``: the pod itself has stopped; an attempt can be over (ImagePullFailed)
    while its pod still exists and must be stopped.
    """

    phase: Phase
    reason: Reason
    message: str
    exit_code: int | None = None
    pod_done: bool = False

    @property
    def finished(self) -> bool:
        return self.phase.finished


def is_transient_pull_message(message: str) -> bool:
    """True if an ErrImagePull / ImagePullBackOff message looks like it may go away."""
    lowered = message.lower()
    return any(marker in lowered for marker in TRANSIENT_PULL_MARKERS)


def container_statuses(pod: Mapping[str, Any], *, init: bool = True) -> list[Mapping[str, Any]]:
    """All container statuses of the pod: init containers first when ``init``."""
    status = pod.get("status") or {}
    keys = ("initContainerStatuses", "containerStatuses") if init else ("containerStatuses",)
    return [item for key in keys for item in status.get(key) or []]


def container_status(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The status of container ``name`` (regular or init), if reported."""
    return next((c for c in container_statuses(pod) if c.get("name") == name), None)


def terminated_state(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The terminated state of a container, now or in its last state."""
    if not status:
        return None
    for key in ("state", "lastState"):
        terminated = (status.get(key) or {}).get("terminated")
        if terminated is not None:
            return terminated
    return None


def has_started(status: Mapping[str, Any] | None) -> bool:
    """True if the container ran at all, so it has a log to read."""
    if not status:
        return False
    state = status.get("state") or {}
    return "running" in state or terminated_state(status) is not None


def image_pull_failure(pod: Mapping[str, Any]) -> str | None:
    """A message when a container cannot pull its image and KPO would fail fast, else None."""
    for status in container_statuses(pod):
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        message = waiting.get("message") or ""
        fatal = reason in FATAL_PULL_REASONS or (
            reason in RETRYABLE_PULL_REASONS and not is_transient_pull_message(message)
        )
        if fatal:
            detail = f": {message}" if message else ""
            return f"container {status.get('name')} cannot pull its image ({reason}){detail}"
    return None


def pod_condition(pod: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The pod condition of that type, if any."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def scheduled_at(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod was scheduled, or None while it is not."""
    condition = pod_condition(pod, "PodScheduled")
    if condition is None or condition.get("status") != "True":
        if (pod.get("spec") or {}).get("nodeName"):
            return created_at(pod)
        return None
    return parse_optional(condition.get("lastTransitionTime")) or created_at(pod)


def created_at(pod: Mapping[str, Any]) -> datetime | None:
    """The pod's creationTimestamp."""
    return parse_optional((pod.get("metadata") or {}).get("creationTimestamp"))


def started_at(pod: Mapping[str, Any]) -> datetime | None:
    """When the kubelet accepted the pod (pod.status.startTime): the activeDeadline origin."""
    return parse_optional((pod.get("status") or {}).get("startTime"))


def is_running(pod: Mapping[str, Any]) -> bool:
    """True once the pod has left Pending (its containers started)."""
    return (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")


def unschedulable_message(pod: Mapping[str, Any]) -> str | None:
    """The scheduler's message while the pod cannot be placed."""
    condition = pod_condition(pod, "PodScheduled")
    if condition and condition.get("status") == "False":
        return str(condition.get("message") or condition.get("reason") or "unschedulable")
    return None


def pod_outcome(pod: Mapping[str, Any], spec: TaskRunSpec) -> Outcome:
    """Judge an attempt from its pod (Tekton's getFailureReason plus KPO's fail-fast rules)."""
    name = (pod.get("metadata") or {}).get("name", "")
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    base = spec.base_container_name
    terminated = terminated_state(container_status(pod, base))
    exit_code = _exit_code(terminated)

    if status.get("reason") in NODE_LOST_REASONS or phase == "Unknown":
        return Outcome(
            Phase.FAILED,
            Reason.NODE_LOST,
            _join(f"the node of pod {name} was lost", status.get("message")),
            exit_code,
            pod_done=True,
        )
    if phase == "Failed":
        return _failed(pod, spec, terminated, exit_code)
    if phase == "Succeeded":
        return Outcome(
            Phase.SUCCEEDED,
            Reason.SUCCEEDED,
            f"pod {name} succeeded",
            exit_code if exit_code is not None else 0,
            pod_done=True,
        )
    pull = image_pull_failure(pod)
    if pull is not None:
        return Outcome(Phase.FAILED, Reason.IMAGE_PULL_FAILED, pull, exit_code)
    if phase == "Running":
        return Outcome(Phase.RUNNING, Reason.RUNNING, f"pod {name} is running", exit_code)
    unschedulable = unschedulable_message(pod)
    if unschedulable is not None:
        return Outcome(
            Phase.PENDING, Reason.PENDING, f"pod {name} is not scheduled: {unschedulable}"
        )
    pulling = _pull_backoff(pod)
    if pulling is not None:
        # A stable message: the kubelet alternates ErrImagePull / ImagePullBackOff, and
        # each change of message would be one more status write.
        return Outcome(
            Phase.PENDING,
            Reason.PENDING,
            f"container {pulling} is retrying its image pull after a transient error",
        )
    return Outcome(Phase.PENDING, Reason.POD_CREATED, f"pod {name} created")


def _pull_backoff(pod: Mapping[str, Any]) -> str | None:
    for status in container_statuses(pod):
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in RETRYABLE_PULL_REASONS:
            return str(status.get("name"))
    return None


def base_outcome(pod: Mapping[str, Any], spec: TaskRunSpec) -> Outcome:
    """Judge an attempt by its base container alone, while another container still runs.

    KPO's exec-mode sidecar sleeps until killed, so the pod stays Running after the task.
    """
    terminated = terminated_state(container_status(pod, spec.base_container_name))
    code = _exit_code(terminated)
    status = {**(pod.get("status") or {}), "phase": "Succeeded" if code == 0 else "Failed"}
    judged = pod_outcome({**pod, "status": status}, spec)
    return Outcome(judged.phase, judged.reason, judged.message, judged.exit_code, pod_done=False)


def _failed(
    pod: Mapping[str, Any],
    spec: TaskRunSpec,
    terminated: Mapping[str, Any] | None,
    exit_code: int | None,
) -> Outcome:
    name = (pod.get("metadata") or {}).get("name", "")
    status = pod.get("status") or {}
    pod_reason = status.get("reason")
    pod_message = status.get("message")
    base = spec.base_container_name
    if pod_reason == "Evicted":
        return Outcome(
            Phase.FAILED,
            Reason.EVICTED,
            _join(f"pod {name} was evicted", pod_message),
            exit_code,
            pod_done=True,
        )
    if pod_reason == "DeadlineExceeded":
        return Outcome(
            Phase.FAILED,
            Reason.DEADLINE_EXCEEDED,
            _join(
                f"pod {name} ran longer than activeDeadlineSeconds"
                f" ({spec.active_deadline_seconds})",
                pod_message,
            ),
            exit_code,
            pod_done=True,
        )
    oom = next(
        (
            c.get("name")
            for c in container_statuses(pod)
            if (terminated_state(c) or {}).get("reason") == "OOMKilled"
        ),
        None,
    )
    if oom is not None:
        return Outcome(
            Phase.FAILED,
            Reason.OOM_KILLED,
            f"container {oom} was killed for running out of memory (OOMKilled)",
            exit_code,
            pod_done=True,
        )
    if exit_code is not None and exit_code in (spec.skip_on_exit_code or []):
        return Outcome(
            Phase.SKIPPED,
            Reason.SKIPPED,
            f"container {base} exited with code {exit_code}, listed in skipOnExitCode",
            exit_code,
            pod_done=True,
        )
    if exit_code not in (None, 0):
        return Outcome(
            Phase.FAILED,
            Reason.EXIT_CODE,
            _join(
                f"container {base} exited with code {exit_code}",
                (terminated or {}).get("message"),
            ),
            exit_code,
            pod_done=True,
        )
    culprit = next(
        (
            (c.get("name"), _exit_code(terminated_state(c)))
            for c in container_statuses(pod)
            if _exit_code(terminated_state(c)) not in (None, 0)
        ),
        None,
    )
    message = (
        f"container {culprit[0]} exited with code {culprit[1]}"
        if culprit
        else _join(f"pod {name} failed", pod_message)
    )
    return Outcome(Phase.FAILED, Reason.EXIT_CODE, message, exit_code, pod_done=True)


def _exit_code(terminated: Mapping[str, Any] | None) -> int | None:
    if terminated is None:
        return None
    code = terminated.get("exitCode")
    return code if isinstance(code, int) else None


def _join(head: str, detail: Any) -> str:
    detail = str(detail).strip() if detail else ""
    return f"{head}: {detail}" if detail else head
