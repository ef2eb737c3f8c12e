"""status.logs.complete, and the pod of a run whose whole log is in it: deleted in the same
decision that writes the terminal status when its reader opted in, held otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from controller.core.actions import (
    CoreSettings,
    DeletePod,
    EmitEvent,
    Gathered,
    Observation,
    PatchStatus,
    ReadLogTail,
)
from controller.core.budget import fit
from controller.core.logs import logs_status
from controller.core.policies import decide
from controller.core.tails import LogTail
from taskrun.api import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_FROM_STATUS,
    TaskRunSpec,
    logs_in_status,
)
from tests.unit.controller.test_policies import LATER, RUNNING_STATUS, finish, patched, run
from tests.unit.controller.test_status import pod, running, taskrun, terminated

OPTED_IN = {ANNOTATION_HOLD_POD: "true", ANNOTATION_LOGS_FROM_STATUS: "true"}
HOLD_ONLY = {ANNOTATION_HOLD_POD: "true"}
ONE = TaskRunSpec(image="i")
TWO = TaskRunSpec(image="i", containerLogs=["base", "helper"])
WHOLE, CUT = LogTail("a\nb\n"), LogTail("b\n", truncated=True)


def _gathered(logs: dict[str, LogTail], stopped: set[str]) -> Gathered:
    return Gathered(logs=logs, stopped=frozenset(stopped))


# (spec, gathered) -> (complete, truncated)
CASES: dict[str, tuple[Any, ...]] = {
    "whole, stopped": (ONE, _gathered({"base": WHOLE}, {"base"}), True, False),
    "empty log, stopped": (ONE, _gathered({"base": LogTail("")}, {"base"}), True, False),
    "cut": (ONE, _gathered({"base": CUT}, {"base"}), False, True),
    "whole so far, still running when read": (ONE, _gathered({"base": WHOLE}, set()), False, False),
    "two containers, both whole": (
        TWO, _gathered({"base": WHOLE, "helper": WHOLE}, {"base", "helper"}), True, False,
    ),
    "two containers, one cut": (
        TWO, _gathered({"base": WHOLE, "helper": CUT}, {"base", "helper"}), False, True,
    ),
    "two containers, one not read (never started)": (
        TWO, _gathered({"base": WHOLE}, {"base"}), False, False,
    ),
    "two containers, one still running": (
        TWO, _gathered({"base": WHOLE, "helper": WHOLE}, {"base"}), False, False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_complete(case: str) -> None:
    spec, gathered, complete, truncated = CASES[case]
    obs = Observation(taskrun({}), None, LATER, gathered=gathered)
    logs = logs_status(obs, spec, "run-1", gathered)
    assert (logs["complete"], logs["truncated"]) == (complete, truncated)


def test_nothing_read_says_nothing() -> None:
    obs = Observation(taskrun({}), None, LATER)
    assert "complete" not in logs_status(obs, ONE, "run-1", Gathered())


@pytest.mark.parametrize(
    ("base", "stopped"),
    [(terminated(0), True), (running(), False)],
    ids=["terminated", "running"],
)
def test_the_read_says_whether_the_container_had_stopped(
    base: dict[str, Any], stopped: bool
) -> None:
    # A pod whose run is cancelled may still run: its tail is no more than "so far".
    tr = taskrun(status=RUNNING_STATUS, cancel=True)
    the_pod = pod("Succeeded" if stopped else "Running", base=base)
    (read,) = [r for r in run(tr, the_pod).reads if isinstance(r, ReadLogTail)]
    assert read.stopped is stopped


def test_a_tail_cut_for_the_status_budget_is_not_complete() -> None:
    status = {"logs": {"tail": "x\n" * 5000, "truncated": False, "complete": True}}
    logs = fit(status, 2000).status["logs"]
    assert (logs["truncated"], logs["complete"]) == (True, False)


def _finish(annotations: dict[str, str], tail: LogTail, **spec: Any) -> Any:
    tr = taskrun(status=RUNNING_STATUS, annotations=annotations, **spec)
    gathered = Gathered(logs={"base": tail}, stopped=frozenset({"base"}))
    return tr, finish(tr, pod("Succeeded", base=terminated(0)), gathered=gathered)


def test_opted_in_and_whole_the_pod_goes_with_the_terminal_write() -> None:
    tr, decision = _finish(OPTED_IN, WHOLE)
    assert [type(a) for a in decision.actions] == [PatchStatus, EmitEvent, DeletePod]
    assert decision.wake_at is None
    written = {**tr, "status": {**RUNNING_STATUS, **patched(decision)}}
    assert logs_in_status(written)  # the reader sees the same rule hold


@pytest.mark.parametrize(
    ("annotations", "tail"),
    [(OPTED_IN, CUT), (HOLD_ONLY, WHOLE)],
    ids=["opted-in-but-cut", "whole-but-not-opted-in"],
)
def test_otherwise_the_pod_is_held(annotations: dict[str, str], tail: LogTail) -> None:
    _, decision = _finish(annotations, tail)
    assert [type(a) for a in decision.actions] == [PatchStatus, EmitEvent]
    assert decision.wake_at is not None


def test_a_finished_run_seen_again_releases_the_pod() -> None:
    # A controller restarted after the terminal write (the delete never went out).
    tr, decision = _finish(OPTED_IN, WHOLE)
    finished = {**tr, "status": {**RUNNING_STATUS, **patched(decision)}}
    the_pod = pod("Succeeded", base=terminated(0))
    again = decide(Observation(finished, the_pod, LATER), CoreSettings())
    assert [type(a) for a in again.actions] == [DeletePod]
