"""The end of an attempt: gather what the pod still holds, capture the result, record the
attempt in history, then retry or finish and dispose of the pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from controller.core import budget, naming, results
from controller.core.actions import (
    CoreSettings,
    Decision,
    Gathered,
    Observation,
    Read,
    ReadEvents,
    ReadLogTail,
    ReadResult,
    meta_of,
    name_of,
    phase_of,
    status_of,
    write,
)
from controller.core.clock import format_time, parse_optional
from controller.core.disposal import Ending, FinishSpec, dispose, exec_sidecar_waiting, finished
from controller.core.logs import log_pointer, logs_status
from controller.core.outcome import Outcome, container_status, created_at, has_started
from controller.core.status import AttemptFields, StatusFields, WarningFields, with_phase
from taskrun.api import XCOM_SIDECAR_NAME, Phase, Reason, TaskRunSpec
from taskrun.api.status import MAX_WARNINGS

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


def current_attempt(status: Mapping[str, Any]) -> int:
    """The attempt in progress: one more than the attempts already recorded in history."""
    return len(status.get("history") or []) + 1


def attempt_pod_name(taskrun: Mapping[str, Any]) -> str:
    """The pod name of the attempt in progress: as recorded in status once it has one.

    A pod made under an older naming scheme (before an upgrade) keeps being found; a new
    attempt gets ``naming.pod_name``. The recorded name gives no rights: the pod found
    under it is still checked to be the TaskRun's own.
    """
    status = status_of(taskrun)
    attempt = current_attempt(status)
    recorded = status.get("podName")
    if (
        isinstance(recorded, str)
        and recorded
        and status.get("attempts") == attempt
        and phase_of(status) in (Phase.PENDING, Phase.RUNNING)
    ):
        return recorded
    return naming.pod_name(name_of(taskrun), attempt)


def attempt_over(
    obs: Observation,
    spec: TaskRunSpec,
    settings: CoreSettings,
    current: Mapping[str, Any],
    outcome: Outcome,
) -> Decision:
    """End the attempt: gather what the pod still holds, then status, then the pod."""
    pod = obs.pod
    if pod is not None and obs.gathered is None:
        reads = _reads(pod, spec, settings, outcome)
        if reads:
            return Decision(reads=reads)
    gathered = obs.gathered or Gathered()
    attempt = current_attempt(current)
    pod_name = (pod or {}).get("metadata", {}).get("name") or current.get("podName")

    end, result_fields = _with_result(outcome, pod, spec, settings, gathered)
    end = _with_pod_events(end, spec, gathered)
    fields: StatusFields = {
        **attempt_fields(obs, spec, attempt, pod_name),
        "exitCode": outcome.exit_code,
        "warnings": _warnings(gathered.events) or current.get("warnings"),
        **result_fields,
    }
    if pod_name and spec.effective_container_logs:
        fields["logs"] = logs_status(obs, spec, pod_name, gathered)
    record = _record(attempt, pod_name, end, attempt_start(pod, current, obs.now), obs.now)
    history = [*(current.get("history") or []), record]
    end, history = _fit(current, end, fields, history, obs.now, settings.max_status_bytes)

    if end.phase == Phase.FAILED and end.reason not in NOT_RETRIED and attempt <= spec.retries:
        return _retry(obs, spec, settings, current, end, fields, history, attempt)
    if spec.retries > 0:
        fields["history"] = history
    desired = with_phase(current, end.phase, end.reason, end.message, obs.now, **fields)
    actions = write(current, desired, obs)
    finished_obs = Observation(taskrun={**obs.taskrun, "status": desired}, pod=pod, now=obs.now)
    follow_up = finished(finished_obs, settings, desired)
    return Decision(actions=actions + follow_up.actions, wake_at=follow_up.wake_at)


def _with_result(
    outcome: Outcome,
    pod: Mapping[str, Any] | None,
    spec: TaskRunSpec,
    settings: CoreSettings,
    gathered: Gathered,
) -> tuple[Outcome, StatusFields]:
    """The result's status fields; a result that cannot be taken fails a successful attempt."""
    if not spec.do_xcom_push or pod is None or not _result_ready(pod, spec, outcome, settings):
        return outcome, {}
    result = _result(pod, gathered, settings)
    fields: StatusFields = {}
    if result.text is not None:
        fields = {"result": result.text, "resultSize": result.size}
    if result.ok:
        return outcome, fields
    if outcome.phase == Phase.SUCCEEDED:
        return replace(
            outcome,
            phase=Phase.FAILED,
            reason=result.reason or outcome.reason,
            message=result.message or "",
        ), fields
    return replace(outcome, message=f"{outcome.message}; {result.message}"), fields


def _with_pod_events(end: Outcome, spec: TaskRunSpec, gathered: Gathered) -> Outcome:
    """A failed attempt's message lists the pod's events (KPO ``log_events_on_failure``)."""
    if end.phase != Phase.FAILED or not spec.log_events_on_failure or not gathered.events:
        return end
    listed = "\n".join(
        f"- {e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}"
        for e in gathered.events
    )
    return replace(end, message=f"{end.message}\npod events:\n{listed}")


def _record(
    attempt: int, pod_name: str | None, end: Outcome, started: str, now: datetime
) -> AttemptFields:
    """The attempt's entry in status.history."""
    record: AttemptFields = {"attempt": attempt}
    if pod_name is not None:
        record["podName"] = pod_name
    record["phase"] = str(end.phase)
    record["reason"] = str(end.reason)
    record["message"] = end.message
    if end.exit_code is not None:
        record["exitCode"] = end.exit_code
    record["startTime"] = started
    record["completionTime"] = format_time(now)
    return record


def _fit(
    current: Mapping[str, Any],
    end: Outcome,
    fields: StatusFields,
    history: list[AttemptFields],
    now: datetime,
    max_status_bytes: int,
) -> tuple[Outcome, list[AttemptFields]]:
    """The status must fit the budget as the API server encodes it: cut the conveniences
    (in ``fields``), and if the result still does not fit, the attempt fails on it."""
    probe_fields: StatusFields = {**fields, "history": history}
    probe = with_phase(current, end.phase, end.reason, end.message, now, **probe_fields)
    fitted = budget.fit(probe, max_status_bytes)
    if fitted.cut:
        for key in ("logs", "warnings"):
            if key in fields:
                fields[key] = fitted.status.get(key)
        history = fitted.status.get("history") or history
        end = replace(end, message=fitted.status.get("message", end.message))
    if fitted.over is not None:
        end = replace(end, phase=Phase.FAILED, reason=fitted.over[0], message=fitted.over[1])
        fields["result"] = fields["resultSize"] = None
        record: AttemptFields = {
            **history[-1],
            "phase": str(end.phase),
            "reason": str(end.reason),
            "message": end.message,
        }
        history = [*history[:-1], record]
    return end, history


def _retry(
    obs: Observation,
    spec: TaskRunSpec,
    settings: CoreSettings,
    current: Mapping[str, Any],
    end: Outcome,
    fields: StatusFields,
    history: list[AttemptFields],
    attempt: int,
) -> Decision:
    """Pending again until the next attempt is due; the failed attempt's pod goes."""
    retry_at = obs.now + timedelta(seconds=spec.effective_retry_backoff.delay_seconds(attempt + 1))
    retry_message = (
        f"attempt {attempt} failed ({end.reason}: {end.message.splitlines()[0]});"
        f" attempt {attempt + 1} of {spec.retries + 1} at {format_time(retry_at)}"
    )
    retry_fields: StatusFields = {
        **fields,
        "history": history,
        "completionTime": None,
        "duration": None,
    }
    desired = with_phase(
        current,
        Phase.PENDING,
        Reason.RETRYING,
        retry_message,
        obs.now,
        **retry_fields,
    )
    actions = write(current, desired, obs)
    ending = Ending(succeeded=False, pod_done=end.pod_done, final=False, completed=obs.now)
    actions += dispose(obs.taskrun, FinishSpec.of(spec), obs.pod, ending, settings, obs.now).actions
    return Decision(actions=actions, wake_at=retry_at)


def _reads(
    pod: Mapping[str, Any],
    spec: TaskRunSpec,
    settings: CoreSettings,
    outcome: Outcome,
) -> list[Read]:
    name = pod["metadata"]["name"]
    reads: list[Read] = []
    if _events_worth_reading(pod, outcome):
        reads.append(ReadEvents(pod=name, uid=pod["metadata"].get("uid")))
    for container in spec.effective_container_logs:
        status = container_status(pod, container)
        if has_started(status):
            reads.append(
                ReadLogTail(
                    pod=name,
                    container=container,
                    lines=settings.log_tail_lines,
                    max_bytes=settings.log_tail_bytes,
                    stopped="terminated" in ((status or {}).get("state") or {}),
                )
            )
    if spec.do_xcom_push and settings.pod.xcom_mode == "exec":
        if exec_sidecar_waiting(pod, spec, settings):
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


def _events_worth_reading(pod: Mapping[str, Any], outcome: Outcome) -> bool:
    """Read the pod's Events (for status.warnings) when the attempt did not succeed or a
    container restarted; a clean success skips the read. kube-apiserver keeps no watch cache
    for Events, so each list is an etcd read of every Event in the namespace: on the real
    API server it was the largest per-run cost in a burst (docs/benchmarks.md). KPO, too,
    reads a pod's events only when it failed."""
    if outcome.phase != Phase.SUCCEEDED:
        return True
    status = pod.get("status") or {}
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    return any((s.get("restartCount") or 0) > 0 for s in statuses)


def _result_ready(
    pod: Mapping[str, Any], spec: TaskRunSpec, outcome: Outcome, settings: CoreSettings
) -> bool:
    if settings.pod.xcom_mode == "exec":
        return exec_sidecar_waiting(pod, spec, settings)
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


def _warnings(events: list[Mapping[str, Any]]) -> list[WarningFields]:
    found: list[WarningFields] = []
    for e in events:
        if e.get("type") != "Warning":
            continue
        warning: WarningFields = {}
        if e.get("reason") is not None:
            warning["reason"] = e["reason"]
        if e.get("message") is not None:
            warning["message"] = e["message"]
        warning["count"] = e.get("count") or 1
        last = e.get("lastTimestamp") or e.get("eventTime")
        if last is not None:
            warning["lastTimestamp"] = last
        found.append(warning)
    found.sort(key=lambda w: str(w.get("lastTimestamp") or ""))
    return found[-MAX_WARNINGS:]


def attempt_fields(
    obs: Observation, spec: TaskRunSpec, attempt: int, pod_name: str | None
) -> StatusFields:
    fields: StatusFields = {
        "observedGeneration": meta_of(obs.taskrun).get("generation"),
        "podName": pod_name,
        "attempts": attempt,
        # The run started when its first pod was made, whenever its first status is written.
        "startTime": status_of(obs.taskrun).get("startTime") or attempt_start(obs.pod, {}, obs.now),
    }
    logs = status_of(obs.taskrun).get("logs") or {}
    if pod_name and spec.effective_container_logs and logs.get("pod") != pod_name:
        fields["logs"] = log_pointer(obs, spec, pod_name)
    return fields


def attempt_start(pod: Mapping[str, Any] | None, current: Mapping[str, Any], now: datetime) -> str:
    if pod is not None:
        created = created_at(pod)
        if created is not None:
            return format_time(created)
    return str(current.get("startTime") or format_time(now))


def retry_due(current: Mapping[str, Any], spec: TaskRunSpec) -> datetime | None:
    history = current.get("history") or []
    if not history:
        return None
    ended = parse_optional(history[-1].get("completionTime"))
    if ended is None:
        return None
    delay = spec.effective_retry_backoff.delay_seconds(len(history) + 1)
    return ended + timedelta(seconds=delay)
