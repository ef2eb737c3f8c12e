"""The reconcile decision: one ladder of guard clauses from the observed world to actions.

``decide`` never does I/O. The caller reads the TaskRun and its pod, calls ``decide``,
executes the actions in order, and calls again at ``wake_at`` or on the next change.
When the decision needs data only the API can give (log tails, the result, pod events),
it asks for it with Read* actions only; the caller reads and decides again with
``Observation.gathered`` filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from controller.core import budget, naming, results
from controller.core.clock import format_time, parse_optional
from controller.core.pod import SpecError, build_pod
from controller.core.podsettings import PodSettings
from controller.core.security import PolicySet, check_pod, describe
from controller.core.status import (
    Outcome,
    base_outcome,
    container_status,
    created_at,
    has_started,
    is_running,
    pod_outcome,
    scheduled_at,
    started_at,
    status_patch,
    terminated_state,
    with_phase,
)
from controller.core.tails import READ_BYTES_FACTOR, LogTail, count_lines
from controller.core.tails import tail_of as tail_of  # re-exported: the Read answers
from taskrun.api import (
    DEFAULT_BASE_CONTAINER_NAME,
    XCOM_SIDECAR_NAME,
    Phase,
    Reason,
    TaskRunSpec,
    format_validation_error,
    validate_spec,
)
from taskrun.api.status import MAX_WARNINGS

Obj = dict[str, Any]

DEFAULT_PENDING_REPORT_SECONDS = 2.0
HOLD_ANNOTATION = "taskrun.dev/hold-pod-until-ack"
ACK_ANNOTATION = "taskrun.dev/logs-acked"
DEFAULT_MAX_HOLD_SECONDS = 600.0

# Failures of the TaskRun itself, not of one attempt: a new pod would fail the same way.
NOT_RETRIED = frozenset(
    {
        Reason.INVALID_SPEC,
        Reason.POLICY_DENIED,
        Reason.POD_NAME_CONFLICT,
        Reason.CANCELLED,
        Reason.CREATE_TIMEOUT,
        Reason.STATUS_TOO_LARGE,
    }
)
# A refused pod create is tried again after the time since the attempt began, within these
# bounds: 1, 2, 4, 8 ... seconds apart, then once a minute, until startupTimeoutSeconds.
CREATE_RETRY_MIN_SECONDS = 1.0
CREATE_RETRY_MAX_SECONDS = 60.0


@dataclass(frozen=True)
class CoreSettings:
    """The controller's configuration as far as decisions go."""

    pod: PodSettings = field(default_factory=PodSettings)
    policies: PolicySet = field(default_factory=PolicySet)
    max_result_bytes: int = results.DEFAULT_MAX_RESULT_BYTES
    log_tail_lines: int = 100
    log_tail_bytes: int = 16384
    max_hold_seconds: float = DEFAULT_MAX_HOLD_SECONDS
    # A first attempt's pod that starts within this long is reported Running directly: no
    # Pending status write (and Event) for the usual case. 0 reports Pending at once.
    pending_report_seconds: float = DEFAULT_PENDING_REPORT_SECONDS
    # The whole status, as the API server encodes it, stays under this (core/budget.py).
    max_status_bytes: int = budget.DEFAULT_MAX_STATUS_BYTES


# --- actions -------------------------------------------------------------------------


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

    @property
    def request_lines(self) -> int:
        # One line more than kept tells whether the log was longer than the tail.
        return self.lines + 1

    @property
    def request_bytes(self) -> int:
        return self.max_bytes * READ_BYTES_FACTOR


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


@dataclass(frozen=True)
class Decision:
    """What to do now, in order, and when to look again (None: on the next change)."""

    actions: list[Action] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    wake_at: datetime | None = None


# --- the ladder ------------------------------------------------------------------------


def decide(obs: Observation, settings: CoreSettings) -> Decision:
    """The next actions for one TaskRun."""
    current = _status(obs.taskrun)
    phase = _phase(current)

    # 1. Finished: only the pod's disposal and the TaskRun's ttl are left.
    if phase is not None and phase.finished:
        return _finished(obs, settings, current)

    # 1b. The API server would not store the status we wrote: end with what surely fits.
    if obs.status_refused is not None:
        return _status_refused(obs, settings, current, obs.status_refused)

    # 2. The spec must parse before anything is built from it.
    try:
        spec = validate_spec(dict(_spec(obs.taskrun)))
    except ValidationError as err:
        return _end_without_pod(obs, current, Reason.INVALID_SPEC, format_validation_error(err))

    # 3. The API server refused our pod, or the name belongs to someone else.
    if obs.create_error is not None:
        reason, message = obs.create_error
        return _end_without_pod(obs, current, reason, message)

    # 4. Cancelled: stop the pod with its grace period.
    if spec.cancel:
        return _attempt_over(
            obs,
            spec,
            settings,
            current,
            Outcome(Phase.CANCELLED, Reason.CANCELLED, "cancelled: spec.cancel is true"),
        )

    attempt = current_attempt(current)
    pod_name = attempt_pod_name(obs.taskrun)

    # 5. No pod: it was deleted under us, or it is time to create it.
    if obs.pod is None:
        if current.get("podName") == pod_name and phase in (Phase.PENDING, Phase.RUNNING):
            return _attempt_over(
                obs,
                spec,
                settings,
                current,
                Outcome(
                    Phase.FAILED,
                    Reason.POD_DELETED,
                    f"pod {pod_name} was deleted before it finished",
                ),
            )
        retry_at = _retry_at(current, spec)
        if retry_at is not None and obs.now < retry_at:
            return Decision(wake_at=retry_at)
        if obs.create_refused is not None:
            return _create_refused(obs, spec, current, obs.create_refused)
        return _create(obs, spec, settings, current, attempt)

    # 6. The pod tells how the attempt stands; the controller's deadlines may end it early.
    outcome = pod_outcome(obs.pod, spec)
    if not outcome.finished and exec_sidecar_waiting(obs.pod, _spec(obs.taskrun), settings):
        outcome = base_outcome(obs.pod, spec)
    deadline: datetime | None = None
    if not outcome.finished:
        outcome, deadline = _check_deadlines(obs.pod, spec, outcome, obs.now)
    if outcome.finished:
        return _attempt_over(obs, spec, settings, current, outcome)

    # 7. Still going: keep the status current and wake up at the next deadline. A pod that
    # was just created is not news yet: if it starts soon, Running is the first write.
    quiet_until = _quiet_until(obs.pod, current, outcome, settings)
    if quiet_until is not None and obs.now < quiet_until:
        return Decision(wake_at=min(quiet_until, deadline) if deadline else quiet_until)
    desired = with_phase(
        current,
        outcome.phase,
        outcome.reason,
        outcome.message,
        obs.now,
        **_attempt_fields(obs, spec, attempt, pod_name),
        # a retried attempt's exit code must not look like this one's
        exitCode=outcome.exit_code,
    )
    return Decision(actions=_write(current, desired, obs), wake_at=deadline)


def _quiet_until(
    pod: Mapping[str, Any], current: Mapping[str, Any], outcome: Outcome, settings: CoreSettings
) -> datetime | None:
    """Until when a first attempt's freshly created pod needs no status write; None if it does.

    Only the plain "pod created" state waits: an unschedulable pod or an image pull backing
    off is reported at once, and so is anything after the first status write.
    """
    if current.get("phase") or outcome.reason != Reason.POD_CREATED:
        return None
    if settings.pending_report_seconds <= 0:
        return None
    created = created_at(pod)
    if created is None:
        return None
    return created + timedelta(seconds=settings.pending_report_seconds)


def exec_sidecar_waiting(
    pod: Mapping[str, Any], spec: Mapping[str, Any], settings: CoreSettings
) -> bool:
    """Exec mode: the base container is done while KPO's sidecar still sleeps."""
    if settings.pod.xcom_mode != "exec" or not spec.get("doXcomPush"):
        return False
    if (pod.get("status") or {}).get("phase") != "Running":
        return False
    base = spec.get("baseContainerName") or DEFAULT_BASE_CONTAINER_NAME
    return terminated_state(container_status(pod, base)) is not None


def current_attempt(status: Mapping[str, Any]) -> int:
    """The attempt in progress: one more than the attempts already recorded in history."""
    return len(status.get("history") or []) + 1


def attempt_pod_name(taskrun: Mapping[str, Any]) -> str:
    """The pod name of the attempt in progress: as recorded in status once it has one.

    A pod made under an older naming scheme (before an upgrade) keeps being found; a new
    attempt gets ``naming.pod_name``. The recorded name gives no rights: the pod found
    under it is still checked to be the TaskRun's own.
    """
    status = _status(taskrun)
    attempt = current_attempt(status)
    recorded = status.get("podName")
    if (
        isinstance(recorded, str)
        and recorded
        and status.get("attempts") == attempt
        and _phase(status) in (Phase.PENDING, Phase.RUNNING)
    ):
        return recorded
    return naming.pod_name(_name(taskrun), attempt)


# --- rungs -----------------------------------------------------------------------------


def _finished(obs: Observation, settings: CoreSettings, current: Mapping[str, Any]) -> Decision:
    actions: list[Action] = []
    wake: list[datetime] = []
    completed = parse_optional(current.get("completionTime")) or obs.now
    pod = obs.pod
    if pod is not None and not _deleting(pod):
        keep, until = _keep_pod(obs.taskrun, current, pod, completed, settings, obs.now)
        if until is not None:
            wake.append(until)
        if not keep:
            actions.append(_delete(pod, _raw_spec_int(obs.taskrun, "terminationGracePeriod")))
        elif exec_sidecar_waiting(pod, _spec(obs.taskrun), settings):
            actions.append(StopSidecar(pod=pod["metadata"]["name"], container=XCOM_SIDECAR_NAME))
    ttl = _raw_spec_int(obs.taskrun, "ttlSecondsAfterFinished")
    if ttl is not None:
        expires = completed + timedelta(seconds=ttl)
        if obs.now >= expires:
            actions.append(DeleteTaskRun(uid=_meta(obs.taskrun).get("uid")))
        else:
            wake.append(expires)
    return Decision(actions=actions, wake_at=min(wake) if wake else None)


# What deciding on a finished TaskRun reads (``_finished`` and ``_keep_pod``), and what the
# controller reads to find its pod: a finished TaskRun is cached cut down to these, so
# thousands of finished runs (with their results and log tails) cost little memory.
FINISHED_SPEC_FIELDS = (
    "onFinishAction",
    "ttlSecondsAfterFinished",
    "terminationGracePeriod",
    "doXcomPush",
    "baseContainerName",
)
FINISHED_META_FIELDS = ("name", "namespace", "uid", "resourceVersion", "generation")
FINISHED_STATUS_FIELDS = ("phase", "reason", "podName", "startTime", "completionTime")


def finished_view(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    """``taskrun`` cut to what deciding on it reads once it has finished; as is otherwise.

    ``decide`` gives the same decision for both (a property test holds it to that).
    """
    status = _status(taskrun)
    phase = _phase(status)
    if phase is None or not phase.finished:
        return taskrun
    meta = _meta(taskrun)
    annotations = meta.get("annotations") or {}
    kept_annotations = {
        k: annotations[k] for k in (HOLD_ANNOTATION, ACK_ANNOTATION) if k in annotations
    }
    spec = _spec(taskrun)
    view: dict[str, Any] = {
        "metadata": {k: meta[k] for k in FINISHED_META_FIELDS if k in meta},
        "spec": {k: spec[k] for k in FINISHED_SPEC_FIELDS if k in spec},
        "status": {k: status[k] for k in FINISHED_STATUS_FIELDS if k in status},
    }
    if kept_annotations:
        view["metadata"]["annotations"] = kept_annotations
    return view


def _keep_pod(
    taskrun: Mapping[str, Any],
    current: Mapping[str, Any],
    pod: Mapping[str, Any],
    completed: datetime,
    settings: CoreSettings,
    now: datetime,
) -> tuple[bool, datetime | None]:
    """Whether a finished run's pod stays, and until when it is held for the log reader."""
    phase = _phase(current)
    pod_phase = (pod.get("status") or {}).get("phase")
    done = pod_phase in ("Succeeded", "Failed") or exec_sidecar_waiting(
        pod, _spec(taskrun), settings
    )
    if not done or phase == Phase.CANCELLED:
        # A pod the controller gave up on is still running: keeping it would leave a zombie.
        return False, None
    annotations = _meta(taskrun).get("annotations") or {}
    if annotations.get(HOLD_ANNOTATION) == "true" and annotations.get(ACK_ANNOTATION) != "true":
        until = completed + timedelta(seconds=settings.max_hold_seconds)
        if now < until:
            return True, until
    action = _spec(taskrun).get("onFinishAction") or "delete_pod"
    if action == "keep_pod":
        return True, None
    if action == "delete_succeeded_pod":
        return phase != Phase.SUCCEEDED, None
    return False, None


def _end_without_pod(
    obs: Observation,
    current: Mapping[str, Any],
    reason: Reason,
    message: str,
) -> Decision:
    desired = with_phase(
        current,
        Phase.FAILED,
        reason,
        message,
        obs.now,
        observedGeneration=_meta(obs.taskrun).get("generation"),
        startTime=current.get("startTime") or format_time(obs.now),
    )
    return Decision(actions=_write(current, desired, obs))


def _create(
    obs: Observation,
    spec: TaskRunSpec,
    settings: CoreSettings,
    current: Mapping[str, Any],
    attempt: int,
) -> Decision:
    try:
        pod = build_pod(obs.taskrun, attempt, settings.pod)
    except SpecError as err:
        return _end_without_pod(obs, current, Reason.INVALID_SPEC, str(err))
    namespace = _meta(obs.taskrun).get("namespace") or ""
    violations = check_pod(pod, settings.policies.for_namespace(namespace))
    if violations:
        return _end_without_pod(obs, current, Reason.POLICY_DENIED, describe(violations))
    return Decision(actions=[CreatePod(pod=pod, attempt=attempt)])


def _status_refused(
    obs: Observation, settings: CoreSettings, current: Mapping[str, Any], words: str
) -> Decision:
    """End the run StatusTooLarge with a status that keeps only what must stay.

    The history stays (the attempt in progress is counted from it), cut to short messages;
    the result, log tail and warnings go. Then the pod is disposed of as for any finished
    run, so nothing is left to retry.
    """
    history = [
        {**r, "message": budget.cut_message(r.get("message"), budget.SHORT_MESSAGE_CHARS)}
        if "message" in r
        else r
        for r in current.get("history") or []
    ]
    logs = {k: v for k, v in (current.get("logs") or {}).items() if k != "tail"}
    desired = with_phase(
        current,
        Phase.FAILED,
        Reason.STATUS_TOO_LARGE,
        f"the API server refused the status as too large ({words}); the result, log tail"
        " and warnings were left out",
        obs.now,
        result=None,
        resultSize=None,
        warnings=None,
        logs=logs or None,
        history=history or None,
        # kept, so a held pod is still found (and disposed of) once the run is finished
        podName=((obs.pod or {}).get("metadata") or {}).get("name") or current.get("podName"),
        startTime=current.get("startTime") or format_time(obs.now),
    )
    actions = _write(current, desired, obs)
    finished_obs = Observation(taskrun={**obs.taskrun, "status": desired}, pod=obs.pod, now=obs.now)
    follow_up = _finished(finished_obs, settings, desired)
    return Decision(actions=actions + follow_up.actions, wake_at=follow_up.wake_at)


def _create_refused(
    obs: Observation, spec: TaskRunSpec, current: Mapping[str, Any], words: str
) -> Decision:
    """The API server refused the pod for now: say so, try again, give up at the deadline.

    The attempt began when the TaskRun was created (attempt 1) or when its retry was due;
    no pod within startupTimeoutSeconds of that ends the run CreateTimeout, as the Job
    controller's FailedCreate would never say on its own.
    """
    began = _retry_at(current, spec) or created_at(obs.taskrun) or obs.now
    limit = spec.startup_timeout_seconds
    deadline = began + timedelta(seconds=limit)
    if obs.now >= deadline:
        return _end_without_pod(
            obs,
            current,
            Reason.CREATE_TIMEOUT,
            f"no pod could be created within startupTimeoutSeconds ({limit}): {words}",
        )
    elapsed = (obs.now - began).total_seconds()
    delay = min(max(elapsed, CREATE_RETRY_MIN_SECONDS), CREATE_RETRY_MAX_SECONDS)
    desired = with_phase(
        current,
        Phase.PENDING,
        Reason.FAILED_CREATE,
        f"{words} (trying again until startupTimeoutSeconds, {limit}s, has passed)",
        obs.now,
        observedGeneration=_meta(obs.taskrun).get("generation"),
        startTime=current.get("startTime") or format_time(began),
    )
    wake = min(obs.now + timedelta(seconds=delay), deadline)
    return Decision(actions=_write(current, desired, obs), wake_at=wake)


def _check_deadlines(
    pod: Mapping[str, Any], spec: TaskRunSpec, outcome: Outcome, now: datetime
) -> tuple[Outcome, datetime | None]:
    """The controller's own deadlines, from the pod's timestamps so restarts keep them."""
    name = (pod.get("metadata") or {}).get("name", "")
    deadlines: list[tuple[datetime, Reason, str]] = []
    created = created_at(pod) or now
    scheduled = scheduled_at(pod)
    if scheduled is None:
        limit = spec.effective_schedule_timeout_seconds
        deadlines.append(
            (
                created + timedelta(seconds=limit),
                Reason.SCHEDULE_TIMEOUT,
                f"pod {name} was not scheduled within scheduleTimeoutSeconds ({limit})",
            )
        )
    elif not is_running(pod):
        limit = spec.startup_timeout_seconds
        deadlines.append(
            (
                scheduled + timedelta(seconds=limit),
                Reason.STARTUP_TIMEOUT,
                f"pod {name} did not start within startupTimeoutSeconds ({limit})",
            )
        )
    if spec.active_deadline_seconds is not None:
        origin = started_at(pod) or created
        limit = spec.active_deadline_seconds
        deadlines.append(
            (
                origin + timedelta(seconds=limit),
                Reason.DEADLINE_EXCEEDED,
                f"pod {name} ran longer than activeDeadlineSeconds ({limit})",
            )
        )
    for at, reason, message in sorted(deadlines, key=lambda d: d[0]):
        if now >= at:
            return Outcome(Phase.FAILED, reason, message, outcome.exit_code), None
    return outcome, min((d[0] for d in deadlines), default=None)


def _attempt_over(
    obs: Observation,
    spec: TaskRunSpec,
    settings: CoreSettings,
    current: Mapping[str, Any],
    outcome: Outcome,
) -> Decision:
    """End the attempt: gather what the pod still holds, then status, then the pod."""
    pod = obs.pod
    if pod is not None and obs.gathered is None:
        reads = _reads(pod, spec, _spec(obs.taskrun), settings, outcome)
        if reads:
            return Decision(reads=reads)
    gathered = obs.gathered or Gathered()
    attempt = current_attempt(current)
    pod_name = (pod or {}).get("metadata", {}).get("name") or current.get("podName")

    phase, reason, message = outcome.phase, outcome.reason, outcome.message
    result_fields: Obj = {}
    if spec.do_xcom_push and pod is not None and _result_ready(pod, obs, outcome, settings):
        result = _result(pod, gathered, settings)
        if result.text is not None:
            result_fields = {"result": result.text, "resultSize": result.size}
        if not result.ok:
            if phase == Phase.SUCCEEDED:
                phase, reason, message = Phase.FAILED, result.reason or reason, result.message or ""
            else:
                message = f"{message}; {result.message}"
    warnings = _warnings(gathered.events)
    if phase == Phase.FAILED and spec.log_events_on_failure and gathered.events:
        message = (
            message
            + "\npod events:\n"
            + "\n".join(
                f"- {e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}"
                for e in gathered.events
            )
        )

    fields: Obj = {
        **_attempt_fields(obs, spec, attempt, pod_name),
        "exitCode": outcome.exit_code,
        "warnings": warnings or current.get("warnings"),
        **result_fields,
    }
    if pod_name and spec.effective_container_logs:
        fields["logs"] = _logs(obs, spec, pod_name, gathered)
    record = {
        "attempt": attempt,
        "podName": pod_name,
        "phase": str(phase),
        "reason": str(reason),
        "message": message,
        "exitCode": outcome.exit_code,
        "startTime": _attempt_start(pod, current, obs.now),
        "completionTime": format_time(obs.now),
    }
    record = {k: v for k, v in record.items() if v is not None}
    history = [*(current.get("history") or []), record]

    # The status must fit the budget as the API server encodes it: cut the conveniences,
    # and if the result still does not fit, the attempt fails on it.
    probe = with_phase(current, phase, reason, message, obs.now, **fields, history=history)
    fitted = budget.fit(probe, settings.max_status_bytes)
    if fitted.cut:
        for key in ("logs", "warnings"):
            if key in fields:
                fields[key] = fitted.status.get(key)
        history = fitted.status.get("history") or history
        message = fitted.status.get("message", message)
        record = history[-1]
    if fitted.over is not None:
        phase, reason, message = Phase.FAILED, fitted.over[0], fitted.over[1]
        fields["result"] = fields["resultSize"] = None
        record = {**record, "phase": str(phase), "reason": str(reason), "message": message}
        history = [*history[:-1], record]

    if phase == Phase.FAILED and reason not in NOT_RETRIED and attempt <= spec.retries:
        retry_at = obs.now + timedelta(
            seconds=spec.effective_retry_backoff.delay_seconds(attempt + 1)
        )
        retry_message = (
            f"attempt {attempt} failed ({reason}: {message.splitlines()[0]});"
            f" attempt {attempt + 1} of {spec.retries + 1} at {format_time(retry_at)}"
        )
        desired = with_phase(
            current,
            Phase.PENDING,
            Reason.RETRYING,
            retry_message,
            obs.now,
            **fields,
            history=history,
            completionTime=None,
            duration=None,
        )
        actions = _write(current, desired, obs)
        if pod is not None and not _deleting(pod):
            # A pod the controller gave up on may still run; it never stays.
            keep = outcome.pod_done and spec.on_finish_action != "delete_pod"
            if not keep:
                actions.append(_delete(pod, spec.termination_grace_period))
        return Decision(actions=actions, wake_at=retry_at)

    if spec.retries > 0:
        fields["history"] = history
    desired = with_phase(current, phase, reason, message, obs.now, **fields)
    actions = _write(current, desired, obs)
    finished_obs = Observation(taskrun={**obs.taskrun, "status": desired}, pod=pod, now=obs.now)
    follow_up = _finished(finished_obs, settings, desired)
    return Decision(actions=actions + follow_up.actions, wake_at=follow_up.wake_at)


def _reads(
    pod: Mapping[str, Any],
    spec: TaskRunSpec,
    raw_spec: Mapping[str, Any],
    settings: CoreSettings,
    outcome: Outcome,
) -> list[Read]:
    name = pod["metadata"]["name"]
    reads: list[Read] = [ReadEvents(pod=name, uid=pod["metadata"].get("uid"))]
    for container in spec.effective_container_logs:
        if has_started(container_status(pod, container)):
            reads.append(
                ReadLogTail(
                    pod=name,
                    container=container,
                    lines=settings.log_tail_lines,
                    max_bytes=settings.log_tail_bytes,
                )
            )
    if spec.do_xcom_push and settings.pod.xcom_mode == "exec":
        if exec_sidecar_waiting(pod, raw_spec, settings):
            reads.append(ReadResult(pod=name, container=XCOM_SIDECAR_NAME, via_exec=True))
    elif spec.do_xcom_push and outcome.pod_done:
        decoded = results.decode(results.termination_message(pod), settings.max_result_bytes)
        if isinstance(decoded, results.LogHandOver):
            reads.append(
                ReadResult(
                    pod=name, container=XCOM_SIDECAR_NAME, size=decoded.size, sha256=decoded.sha256
                )
            )
    return reads


def _result_ready(
    pod: Mapping[str, Any], obs: Observation, outcome: Outcome, settings: CoreSettings
) -> bool:
    if settings.pod.xcom_mode == "exec":
        return exec_sidecar_waiting(pod, _spec(obs.taskrun), settings)
    return outcome.pod_done


def _result(pod: Mapping[str, Any], gathered: Gathered, settings: CoreSettings) -> results.Result:
    if settings.pod.xcom_mode == "exec":
        return gathered.result or results.Result(
            reason=Reason.RESULT_INVALID,
            message=f"the result could not be read from the {XCOM_SIDECAR_NAME} container",
        )
    decoded = results.decode(results.termination_message(pod), settings.max_result_bytes)
    if isinstance(decoded, results.Result):
        return decoded
    return gathered.result or results.Result(
        reason=Reason.RESULT_INVALID,
        message=f"the result in the {XCOM_SIDECAR_NAME} log could not be read",
    )


def _logs(obs: Observation, spec: TaskRunSpec, pod_name: str, gathered: Gathered) -> Obj:
    namespace = _meta(obs.taskrun).get("namespace") or ""
    containers = spec.effective_container_logs
    container = containers[0]
    logs: Obj = {
        "namespace": namespace,
        "pod": pod_name,
        "container": container,
        "command": f"kubectl logs -n {namespace} {pod_name} -c {container}",
    }
    tails = [(c, gathered.logs[c]) for c in containers if c in gathered.logs]
    if tails:
        if len(containers) == 1:
            text = tails[0][1].text
        else:
            text = "".join(f"==> {c} <==\n{_ended(t.text)}" for c, t in tails)
        logs["tail"] = text
        logs["tailLines"] = count_lines(text)
        logs["truncated"] = any(t.truncated for _, t in tails)
    return logs


def _ended(text: str) -> str:
    # The next container's header must start a line of its own.
    return text if not text or text.endswith("\n") else text + "\n"


def _warnings(events: list[Mapping[str, Any]]) -> list[Obj]:
    found = [
        {
            "reason": e.get("reason"),
            "message": e.get("message"),
            "count": e.get("count") or 1,
            "lastTimestamp": e.get("lastTimestamp") or e.get("eventTime"),
        }
        for e in events
        if e.get("type") == "Warning"
    ]
    found.sort(key=lambda w: str(w.get("lastTimestamp") or ""))
    return [{k: v for k, v in w.items() if v is not None} for w in found[-MAX_WARNINGS:]]


def _attempt_fields(obs: Observation, spec: TaskRunSpec, attempt: int, pod_name: str | None) -> Obj:
    fields: Obj = {
        "observedGeneration": _meta(obs.taskrun).get("generation"),
        "podName": pod_name,
        "attempts": attempt,
        # The run started when its first pod was made, whenever its first status is written.
        "startTime": _status(obs.taskrun).get("startTime") or _attempt_start(obs.pod, {}, obs.now),
    }
    logs = _status(obs.taskrun).get("logs") or {}
    if pod_name and spec.effective_container_logs and logs.get("pod") != pod_name:
        namespace = _meta(obs.taskrun).get("namespace") or ""
        container = spec.effective_container_logs[0]
        fields["logs"] = {
            "namespace": namespace,
            "pod": pod_name,
            "container": container,
            "command": f"kubectl logs -n {namespace} {pod_name} -c {container}",
        }
    return fields


def _attempt_start(pod: Mapping[str, Any] | None, current: Mapping[str, Any], now: datetime) -> str:
    if pod is not None:
        created = created_at(pod)
        if created is not None:
            return format_time(created)
    return str(current.get("startTime") or format_time(now))


def _retry_at(current: Mapping[str, Any], spec: TaskRunSpec) -> datetime | None:
    history = current.get("history") or []
    if not history:
        return None
    ended = parse_optional(history[-1].get("completionTime"))
    if ended is None:
        return None
    delay = spec.effective_retry_backoff.delay_seconds(len(history) + 1)
    return ended + timedelta(seconds=delay)


def _write(
    current: Mapping[str, Any], desired: Mapping[str, Any], obs: Observation
) -> list[Action]:
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


def _delete(pod: Mapping[str, Any], grace: int | None) -> DeletePod:
    meta = pod.get("metadata") or {}
    return DeletePod(name=meta.get("name", ""), uid=meta.get("uid"), grace_seconds=grace)


def _deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _status(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    """The controller's status; {} until its first write.

    A status without a phase is the CRD's default (taskrun/api/crd.py DEFAULT_STATUS, which
    the API server fills in on every read until the first write): not a report of ours, so
    its conditions' times and reasons must not carry over into the first real one.
    """
    status = taskrun.get("status")
    return status if isinstance(status, Mapping) and status.get("phase") else {}


def _spec(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = taskrun.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _meta(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    return taskrun.get("metadata") or {}


def _name(taskrun: Mapping[str, Any]) -> str:
    return str(_meta(taskrun).get("name", ""))


def _phase(status: Mapping[str, Any]) -> Phase | None:
    try:
        return Phase(status.get("phase"))
    except ValueError:
        return None


def _raw_spec_int(taskrun: Mapping[str, Any], key: str) -> int | None:
    value = _spec(taskrun).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
