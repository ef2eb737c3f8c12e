"""Every status ``decide`` writes is a valid TaskRunStatus: the model the CRD and docs come
from is also what the controller's status builder (status.with_phase) produces."""

from __future__ import annotations

from typing import Any

import pytest

from controller.core.actions import CoreSettings, Gathered, Observation, PatchStatus
from controller.core.policies import decide
from controller.core.results import Result
from controller.core.tails import LogTail
from taskrun.api import Reason, TaskRunStatus
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
