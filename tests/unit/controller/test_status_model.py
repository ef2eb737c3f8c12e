"""Every status ``decide`` writes is a valid TaskRunStatus: the model the CRD and docs come
from is also what the controller's status builder (status.with_phase) produces.

The builder's field types (StatusFields and the nested TypedDicts) carry the model's wire
names, so mypy checks every caller; the cases below and hypothesis's simulated runs check
the statuses themselves, and that each status patch writes only what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.actions import (
    CoreSettings,
    Decision,
    Gathered,
    Observation,
    PatchStatus,
    status_of,
)
from controller.core.attempt import attempt_pod_name
from controller.core.policies import decide
from controller.core.results import Result
from controller.core.status import (
    AttemptFields,
    ConditionFields,
    LogsFields,
    StatusFields,
    WarningFields,
)
from controller.core.tails import LogTail
from taskrun.api import Reason, TaskRunStatus
from taskrun.api.status import AttemptRecord, Condition, LogsStatus, WarningEvent
from tests.unit.controller.test_policies import LATER, RUNNING_STATUS, _apply
from tests.unit.controller.test_status import pod, running, taskrun, terminated

SETTINGS = CoreSettings()
GATHERED = Gathered(
    logs={"base": LogTail("line 1\nline 2\n", truncated=True)},
    result=Result(text='{"a": 1}', size=8),
    events=[
        {"type": "Warning", "reason": "BackOff", "message": "back-off", "count": 2},
        {"type": "Normal", "reason": "Pulled", "message": "pulled"},
    ],
)


def written(tr: dict[str, Any], the_pod: dict[str, Any] | None, **obs: Any) -> list[dict]:
    """Each status ``decide`` writes for ``tr``, with the Read answers when it asks."""
    decision = decide(Observation(tr, the_pod, LATER, **obs), SETTINGS)
    if decision.reads:
        decision = decide(Observation(tr, the_pod, LATER, gathered=GATHERED, **obs), SETTINGS)
    status = tr.get("status") or {}
    return [_apply(status, a.patch) for a in decision.actions if isinstance(a, PatchStatus)]


CASES = {
    "running": (taskrun(status=RUNNING_STATUS), pod("Running", base=running()), {}),
    "pending": (taskrun(), pod("Pending"), {}),
    "succeeded": (taskrun(status=RUNNING_STATUS), pod("Succeeded", base=terminated(0)), {}),
    "failed": (taskrun(status=RUNNING_STATUS), pod("Failed", base=terminated(3)), {}),
    "result": (
        taskrun(status=RUNNING_STATUS, doXcomPush=True),
        pod("Succeeded", base=terminated(0)),
        {},
    ),
    "retrying": (
        taskrun(status=RUNNING_STATUS, retries=2),
        pod("Failed", base=terminated(1)),
        {},
    ),
    "events on failure": (
        taskrun(status=RUNNING_STATUS, logEventsOnFailure=True),
        pod("Failed", base=terminated(1)),
        {},
    ),
    "cancelled": (taskrun(status=RUNNING_STATUS, cancel=True), pod("Running", base=running()), {}),
    "invalid spec": (taskrun(image=""), None, {}),
    "create refused": (taskrun(), None, {"create_refused": "403 Forbidden: quota"}),
    "name conflict": (taskrun(), None, {"create_error": (Reason.POD_NAME_CONFLICT, "taken")}),
    "status refused": (
        taskrun(status=RUNNING_STATUS),
        pod("Running", base=running()),
        {"status_refused": "413"},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_every_written_status_is_a_valid_task_run_status(case: str) -> None:
    tr, the_pod, obs = CASES[case]
    statuses = written(tr, the_pod, **obs)
    assert statuses, f"{case}: no status written"
    for status in statuses:
        # The model ignores unknown fields when reading (another controller version may have
        # written them), so the check is the round trip: nothing unknown, renamed or retyped.
        model = TaskRunStatus.model_validate(status)
        assert model.model_dump(mode="json", by_alias=True, exclude_none=True) == status


def test_the_check_would_catch_a_status_off_the_model() -> None:
    (status,) = written(*CASES["succeeded"][:2])
    with pytest.raises(ValueError, match="phase"):
        TaskRunStatus.model_validate({**status, "phase": "Finished"})


# --- the builder's types are the model's ---------------------------------------------------

BUILDER_TYPES = [
    # (TypedDict, model, fields the builder writes from its own arguments)
    (StatusFields, TaskRunStatus, {"phase", "reason", "message", "conditions"}),
    (ConditionFields, Condition, {"observedGeneration"}),
    (LogsFields, LogsStatus, set()),
    (WarningFields, WarningEvent, set()),
    (AttemptFields, AttemptRecord, set()),
]


@pytest.mark.parametrize(("fields", "model", "own"), BUILDER_TYPES)
def test_the_builders_field_names_are_the_models(fields: Any, model: Any, own: set[str]) -> None:
    wire = {info.alias or name for name, info in model.model_fields.items()}
    assert set(get_type_hints(fields)) == wire - own


# --- every status of a simulated run, over hypothesis's runs ---------------------------------

POD_STATES = {
    "unschedulable": lambda name: pod("Pending", name=name, scheduled="0/1 nodes", started=None),
    "created": lambda name: pod("Pending", name=name, scheduled=False, started=None),
    "pull failed": lambda name: pod(
        "Pending", name=name, base={"waiting": {"reason": "InvalidImageName", "message": "x"}}
    ),
    "running": lambda name: pod("Running", name=name, base=running()),
    "succeeded": lambda name: pod("Succeeded", name=name, base=terminated(0)),
    "failed": lambda name: pod("Failed", name=name, base=terminated(3, message="boom")),
    "skipped": lambda name: pod("Failed", name=name, base=terminated(99)),
    "evicted": lambda name: pod("Failed", name=name, reason="Evicted", message="disk"),
    "node lost": lambda name: pod("Running", name=name, reason="NodeLost", base=running()),
    "deleted": lambda name: None,
}

specs = st.fixed_dictionaries(
    {},
    optional={
        "retries": st.integers(0, 2),
        "doXcomPush": st.booleans(),
        "logEventsOnFailure": st.booleans(),
        "onFinishAction": st.sampled_from(["delete_pod", "keep_pod", "delete_succeeded_pod"]),
        "ttlSecondsAfterFinished": st.sampled_from([0, 60]),
        "activeDeadlineSeconds": st.sampled_from([30, 3600]),
        "startupTimeoutSeconds": st.sampled_from([30, 3600]),
        "skipOnExitCode": st.just([99]),
        "cancel": st.booleans(),
        "image": st.sampled_from(["busybox", ""]),
    },
)
steps = st.lists(
    st.tuples(
        st.sampled_from(list(POD_STATES)),
        st.sampled_from([1, 45, 4000]),  # seconds since the step before
        st.sampled_from([{}, {}, {}, {"create_refused": "403: quota"}, {"status_refused": "413"}]),
    ),
    min_size=1,
    max_size=8,
)


def _decide(tr: dict[str, Any], the_pod: Any, now: datetime, obs: dict[str, Any]) -> Decision:
    decision = decide(Observation(tr, the_pod, now, **obs), SETTINGS)
    if decision.reads:
        decision = decide(Observation(tr, the_pod, now, gathered=GATHERED, **obs), SETTINGS)
    return decision


def _changed_only(current: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            assert key in current, f"patch removes {key}, which is not there"
        elif isinstance(value, Mapping) and isinstance(current.get(key), Mapping):
            _changed_only(current[key], value)
        else:
            assert current.get(key) != value, f"patch writes {key} unchanged"


@settings(max_examples=300, deadline=None)
@given(spec=specs, steps=steps)
def test_every_status_of_a_run_is_a_task_run_status_and_each_patch_only_what_changed(
    spec: dict[str, Any], steps: list[tuple[str, int, dict[str, Any]]]
) -> None:
    tr = taskrun(**spec)
    now = LATER
    for state, seconds, obs in steps:
        now += timedelta(seconds=seconds)
        the_pod = POD_STATES[state](attempt_pod_name(tr))
        decision = _decide(tr, the_pod, now, obs)
        patches = [a.patch for a in decision.actions if isinstance(a, PatchStatus)]
        assert len(patches) <= 1
        if not patches:
            continue
        current = status_of(tr)
        _changed_only(current, patches[0])
        status = _apply(dict(current), patches[0])
        model = TaskRunStatus.model_validate(status)
        assert model.model_dump(mode="json", by_alias=True, exclude_none=True) == status
        tr = {**tr, "status": status}
        # The status written is what deciding again on the same world wants: no second write.
        # (A retry moved on to the next attempt, whose pod does not exist yet.)
        if the_pod is not None and attempt_pod_name(tr) != the_pod["metadata"]["name"]:
            the_pod = None
        again = _decide(tr, the_pod, now, {k: v for k, v in obs.items() if k != "status_refused"})
        assert not [a for a in again.actions if isinstance(a, PatchStatus)], (state, obs)
