"""The reconcile decision: one ladder of guard clauses from the observed world to actions.

``decide`` never does I/O. The caller reads the TaskRun and its pod, calls ``decide``,
executes the actions in order, and calls again at ``wake_at`` or on the next change.
When the decision needs data only the API can give (log tails, the result, pod events),
it asks for it with Read* actions only; the caller reads and decides again with
``Observation.gathered`` filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from controller.core import budget
from controller.core.actions import (
    CoreSettings,
    CreatePod,
    Decision,
    Observation,
    meta_of,
    phase_of,
    spec_of,
    status_of,
    write,
)
from controller.core.attempt import (
    attempt_fields,
    attempt_over,
    attempt_pod_name,
    current_attempt,
    retry_due,
)
from controller.core.clock import format_time
from controller.core.disposal import exec_sidecar_waiting, finished
from controller.core.earlier import with_earlier
from controller.core.outcome import (
    Outcome,
    base_outcome,
    created_at,
    is_running,
    pod_outcome,
    scheduled_at,
    started_at,
)
from controller.core.pod import SpecError, build_pod
from controller.core.security import check_pod, describe
from controller.core.status import AttemptFields, LogsFields, with_phase
from taskrun.api import Phase, Reason, TaskRunSpec, format_validation_error, validate_spec

# A refused pod create is tried again after the time since the attempt began, within these
# bounds: 1, 2, 4, 8 ... seconds apart, then once a minute, until startupTimeoutSeconds.
CREATE_RETRY_MIN_SECONDS = 1.0


CREATE_RETRY_MAX_SECONDS = 60.0


def decide(obs: Observation, settings: CoreSettings) -> Decision:
    """The next actions for one TaskRun, and for the pods its earlier attempts left."""
    return with_earlier(_decide(obs, settings), obs, settings)


def _decide(obs: Observation, settings: CoreSettings) -> Decision:
    """The next actions for the TaskRun and its current attempt's pod."""
    current = status_of(obs.taskrun)
    phase = phase_of(current)

    # 1. Finished: only the pod's disposal and the TaskRun's ttl are left.
    if phase is not None and phase.finished:
        return finished(obs, settings, current)

    # 1b. The API server would not store the status we wrote: end with what surely fits.
    if obs.status_refused is not None:
        return _status_refused(obs, settings, current, obs.status_refused)

    # 2. The spec must parse before anything is built from it.
    try:
        spec = validate_spec(dict(spec_of(obs.taskrun)))
    except ValidationError as err:
        return _end_without_pod(obs, current, Reason.INVALID_SPEC, format_validation_error(err))

    # 3. The API server refused our pod, or the name belongs to someone else.
    if obs.create_error is not None:
        reason, message = obs.create_error
        return _end_without_pod(obs, current, reason, message)

    # 4. Cancelled: stop the pod with its grace period.
    if spec.cancel:
        return attempt_over(
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
            return attempt_over(
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
        retry_at = retry_due(current, spec)
        if retry_at is not None and obs.now < retry_at:
            return Decision(wake_at=retry_at)
        if obs.create_refused is not None:
            return _create_refused(obs, spec, current, obs.create_refused)
        return _create(obs, spec, settings, current, attempt)

    # 6. The pod tells how the attempt stands; the controller's deadlines may end it early.
    outcome = pod_outcome(obs.pod, spec)
    if not outcome.finished and exec_sidecar_waiting(obs.pod, spec, settings):
        outcome = base_outcome(obs.pod, spec)
    deadline: datetime | None = None
    if not outcome.finished:
        outcome, deadline = _check_deadlines(obs.pod, spec, outcome, obs.now)
    if outcome.finished:
        return attempt_over(obs, spec, settings, current, outcome)

    # 7. Still going: keep the status current and wake up at the next deadline. A pod that
    # was just created is not news yet: if it starts soon, Running is the first write.
    quiet_until = _quiet_until(obs.pod, current, outcome, settings)
    if quiet_until is not None and obs.now < quiet_until:
        return Decision(wake_at=min(quiet_until, deadline) if deadline else quiet_until)
    fields = attempt_fields(obs, spec, attempt, pod_name)
    # a retried attempt's exit code must not look like this one's
    fields["exitCode"] = outcome.exit_code
    desired = with_phase(
        current,
        outcome.phase,
        outcome.reason,
        outcome.message,
        obs.now,
        **fields,
    )
    return Decision(actions=write(current, desired, obs), wake_at=deadline)


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
        observedGeneration=meta_of(obs.taskrun).get("generation"),
        startTime=current.get("startTime") or format_time(obs.now),
    )
    return Decision(actions=write(current, desired, obs))


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
    namespace = meta_of(obs.taskrun).get("namespace") or ""
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
    history: list[AttemptFields] = [_shortened(r) for r in current.get("history") or []]
    logs: LogsFields = {**(current.get("logs") or {})}
    logs.pop("tail", None)
    if "complete" in logs:
        logs["complete"] = False
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
    actions = write(current, desired, obs)
    finished_obs = Observation(taskrun={**obs.taskrun, "status": desired}, pod=obs.pod, now=obs.now)
    follow_up = finished(finished_obs, settings, desired)
    return Decision(actions=actions + follow_up.actions, wake_at=follow_up.wake_at)


def _shortened(record: AttemptFields) -> AttemptFields:
    if "message" not in record:
        return record
    return {**record, "message": budget.cut_message(record["message"], budget.SHORT_MESSAGE_CHARS)}


def _create_refused(
    obs: Observation, spec: TaskRunSpec, current: Mapping[str, Any], words: str
) -> Decision:
    """The API server refused the pod for now: say so, try again, give up at the deadline.

    The attempt began when the TaskRun was created (attempt 1) or when its retry was due;
    no pod within startupTimeoutSeconds of that ends the run CreateTimeout, as the Job
    controller's FailedCreate would never say on its own.
    """
    began = retry_due(current, spec) or created_at(obs.taskrun) or obs.now
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
        observedGeneration=meta_of(obs.taskrun).get("generation"),
        startTime=current.get("startTime") or format_time(began),
    )
    wake = min(obs.now + timedelta(seconds=delay), deadline)
    return Decision(actions=write(current, desired, obs), wake_at=wake)


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
