"""What becomes of a finished run's pod (kept, held for its log reader, or deleted) and of the
run itself (ttlSecondsAfterFinished), from the typed part of its spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

from pydantic import ConfigDict, Strict, TypeAdapter, ValidationError

from controller.core.actions import (
    Action,
    CoreSettings,
    Decision,
    DeleteTaskRun,
    Observation,
    StopSidecar,
    delete_pod,
    deleting,
    meta_of,
    phase_of,
    spec_of,
    status_of,
)
from controller.core.clock import parse_optional
from controller.core.outcome import container_status, terminated_state
from taskrun.api import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    DEFAULT_BASE_CONTAINER_NAME,
    XCOM_SIDECAR_NAME,
    OnFinishAction,
    Phase,
    TaskRunSpec,
    holds_pod,
    logs_in_status,
)

Obj = dict[str, Any]


class SidecarSpec(Protocol):
    """What the result sidecar's state depends on: TaskRunSpec and FinishSpec both say it."""

    @property
    def do_xcom_push(self) -> bool: ...

    @property
    def base_container_name(self) -> str: ...


def exec_sidecar_waiting(pod: Mapping[str, Any], spec: SidecarSpec, settings: CoreSettings) -> bool:
    """Exec mode: the base container is done while KPO's sidecar still sleeps."""
    if settings.pod.xcom_mode != "exec" or not spec.do_xcom_push:
        return False
    if (pod.get("status") or {}).get("phase") != "Running":
        return False
    return terminated_state(container_status(pod, spec.base_container_name)) is not None


@dataclass(frozen=True)
class FinishSpec:
    """The part of the spec that deciding on a finished run reads, typed as TaskRunSpec's.

    A finished run's spec need not validate as a whole (it may have ended InvalidSpec), and
    the controller caches finished runs cut to these fields (``finished_view``): each field
    is parsed on its own with its type in TaskRunSpec, and one the type refuses counts as
    not given.
    """

    on_finish_action: OnFinishAction = OnFinishAction.DELETE_POD
    ttl_seconds_after_finished: int | None = None
    termination_grace_period: int | None = None
    do_xcom_push: bool = False
    base_container_name: str = DEFAULT_BASE_CONTAINER_NAME

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> FinishSpec:
        values: dict[str, Any] = {}
        for name, (alias, adapter) in _FINISH_FIELDS.items():
            if raw.get(alias) is None:
                continue
            try:
                values[name] = adapter.validate_python(raw[alias])
            except ValidationError:
                continue
        return cls(**values)

    @classmethod
    def of(cls, spec: TaskRunSpec) -> FinishSpec:
        """The same fields of a spec already parsed whole (a run still going)."""
        return cls(**{name: getattr(spec, name) for name in cls.__dataclass_fields__})


def _field_type(name: str) -> tuple[str, TypeAdapter[Any]]:
    """A TaskRunSpec field's wire name and type, strict as the model is (a bool is no int).

    Of its constraints only strictness is kept: a negative ttl still means "delete now".
    """
    info = TaskRunSpec.model_fields[name]
    strictness = [m for m in info.metadata if isinstance(m, Strict)]
    annotation: Any = Annotated[(info.annotation, *strictness)] if strictness else info.annotation
    return str(info.alias), TypeAdapter(annotation, config=ConfigDict(strict=True))


_FINISH_FIELDS = {name: _field_type(name) for name in FinishSpec.__dataclass_fields__}


# What deciding on a finished TaskRun reads (``finished`` and ``dispose``), and what the
# controller reads to find its pod: a finished TaskRun is cached cut down to these, so
# thousands of finished runs (with their results and log tails) cost little memory.
FINISHED_SPEC_FIELDS = tuple(alias for alias, _ in _FINISH_FIELDS.values())


FINISHED_META_FIELDS = ("name", "namespace", "uid", "resourceVersion", "generation")


FINISHED_STATUS_FIELDS = ("phase", "reason", "podName", "startTime", "completionTime")


def finished_view(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    """``taskrun`` cut to what deciding on it reads once it has finished; as is otherwise.

    ``decide`` gives the same decision for both (a property test holds it to that).
    """
    status = status_of(taskrun)
    phase = phase_of(status)
    if phase is None or not phase.finished:
        return taskrun
    meta = meta_of(taskrun)
    annotations = meta.get("annotations") or {}
    kept_annotations = {
        k: annotations[k] for k in (ANNOTATION_HOLD_POD, ANNOTATION_LOGS_ACKED) if k in annotations
    }
    if logs_in_status(taskrun):
        # Its reader takes the log from the status, so the hold asks for nothing: the view
        # says so without keeping status.logs (memory per finished run stays as it was).
        kept_annotations.pop(ANNOTATION_HOLD_POD, None)
    spec = spec_of(taskrun)
    view: dict[str, Any] = {
        "metadata": {k: meta[k] for k in FINISHED_META_FIELDS if k in meta},
        "spec": {k: spec[k] for k in FINISHED_SPEC_FIELDS if k in spec},
        "status": {k: status[k] for k in FINISHED_STATUS_FIELDS if k in status},
    }
    if kept_annotations:
        view["metadata"]["annotations"] = kept_annotations
    return view


@dataclass(frozen=True)
class Ending:
    """How a run, or one attempt of it, ended: what its pod's fate and the run's depend on."""

    succeeded: bool
    # The pod stopped on its own. A pod the controller gave up on (a cancel, a timeout, an
    # image that cannot be pulled) may still run: it never stays, whatever the finish action.
    pod_done: bool
    # The run is over; False: the attempt is retried. Only a run that is over is held for
    # its log reader and counts down its ttl.
    final: bool
    completed: datetime


def dispose(
    taskrun: Mapping[str, Any],
    spec: FinishSpec,
    pod: Mapping[str, Any] | None,
    ending: Ending,
    settings: CoreSettings,
    now: datetime,
) -> Decision:
    """What becomes of the pod of a run or attempt that ended, and of the run itself.

    The pod goes unless it stopped on its own and is either held for its log reader
    (``taskrun.api.holds_pod``: the hold annotation without its ack, and the log not handed
    over whole in the status; up to ``--max-hold-seconds`` after the end) or kept by
    ``onFinishAction``; a kept pod whose exec-mode sidecar still sleeps has it stopped. The
    run goes ``ttlSecondsAfterFinished`` after its end. Wakes when the hold or the ttl ends.
    """
    actions: list[Action] = []
    wake: list[datetime] = []
    if pod is not None and not deleting(pod):
        held_until = _held_until(taskrun, ending, settings, now) if ending.pod_done else None
        if held_until is not None:
            wake.append(held_until)
        keep = ending.pod_done and (
            held_until is not None or _kept(spec.on_finish_action, ending.succeeded)
        )
        if not keep:
            actions.append(delete_pod(pod, spec.termination_grace_period))
        elif exec_sidecar_waiting(pod, spec, settings):
            meta = pod["metadata"]
            actions.append(
                StopSidecar(pod=meta["name"], container=XCOM_SIDECAR_NAME, uid=meta.get("uid"))
            )
    ttl = spec.ttl_seconds_after_finished
    if ending.final and ttl is not None:
        expires = ending.completed + timedelta(seconds=ttl)
        if now >= expires:
            actions.append(DeleteTaskRun(uid=meta_of(taskrun).get("uid")))
        else:
            wake.append(expires)
    return Decision(actions=actions, wake_at=min(wake) if wake else None)


def _kept(action: OnFinishAction, succeeded: bool) -> bool:
    if action == OnFinishAction.KEEP_POD:
        return True
    if action == OnFinishAction.DELETE_SUCCEEDED_POD:
        return not succeeded
    return False


def _held_until(
    taskrun: Mapping[str, Any], ending: Ending, settings: CoreSettings, now: datetime
) -> datetime | None:
    if not ending.final or not holds_pod(taskrun):
        return None
    until = ending.completed + timedelta(seconds=settings.max_hold_seconds)
    return until if now < until else None


def finished(obs: Observation, settings: CoreSettings, current: Mapping[str, Any]) -> Decision:
    """A finished run: its pod and its ttl (``dispose``)."""
    spec = FinishSpec.read(spec_of(obs.taskrun))
    phase = phase_of(current)
    pod = obs.pod
    pod_done = (
        pod is not None
        and phase != Phase.CANCELLED
        and (
            (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            or exec_sidecar_waiting(pod, spec, settings)
        )
    )
    ending = Ending(
        succeeded=phase == Phase.SUCCEEDED,
        pod_done=pod_done,
        final=True,
        completed=parse_optional(current.get("completionTime")) or obs.now,
    )
    return dispose(obs.taskrun, spec, pod, ending, settings, obs.now)
