"""dispose: one decision for the pod of a run that finished and of an attempt that is retried,
with the hold for the log reader and the run's ttl."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core.actions import CoreSettings, DeletePod, DeleteTaskRun, StopSidecar
from controller.core.disposal import Ending, FinishSpec, dispose
from controller.core.podsettings import PodSettings
from taskrun.api import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
    XCOM_SIDECAR_NAME,
    OnFinishAction,
    TaskRunSpec,
)

END = datetime(2026, 1, 1, tzinfo=UTC)
HOLD = 600
SETTINGS = CoreSettings(max_hold_seconds=HOLD)
EXEC = CoreSettings(max_hold_seconds=HOLD, pod=PodSettings(xcom_mode="exec"))
KEEP, DELETE, DELETE_OK = (
    OnFinishAction.KEEP_POD,
    OnFinishAction.DELETE_POD,
    OnFinishAction.DELETE_SUCCEEDED_POD,
)


def run(
    hold: bool = False,
    acked: bool = False,
    from_status: bool = False,
    complete: bool | None = None,
    logs_pod: str = "t-1",
) -> dict[str, Any]:
    """A finished run: its hand-over annotations, and status.logs of ``logs_pod`` with
    ``complete`` as given (None: a controller that did not write it)."""
    annotations = {}
    if hold:
        annotations[ANNOTATION_HOLD_POD] = "true"
    if acked:
        annotations[ANNOTATION_LOGS_ACKED] = "true"
    if from_status:
        annotations[ANNOTATION_LOGS_FROM_STATUS] = "true"
    logs: dict[str, Any] = {"pod": logs_pod, "tail": "done\n", "truncated": complete is False}
    if complete is not None:
        logs["complete"] = complete
    return {
        "metadata": {"name": "t", "uid": "run-uid", "annotations": annotations},
        "status": {"podName": "t-1", "logs": logs},
    }


def pod(phase: str = "Failed", deleting: bool = False, sidecar_waits: bool = False) -> dict:
    meta: dict[str, Any] = {"name": "t-1", "uid": "pod-uid"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase}
    if sidecar_waits:
        status = {
            "phase": "Running",
            "containerStatuses": [
                {"name": "base", "state": {"terminated": {"exitCode": 0}}},
                {"name": XCOM_SIDECAR_NAME, "state": {"running": {}}},
            ],
        }
    return {"metadata": meta, "status": status}


FINAL = Ending(succeeded=True, pod_done=True, final=True, completed=END)
FAILED = Ending(succeeded=False, pod_done=True, final=True, completed=END)
GIVEN_UP = Ending(succeeded=False, pod_done=False, final=True, completed=END)
RETRIED = Ending(succeeded=False, pod_done=True, final=False, completed=END)
RETRIED_GIVEN_UP = Ending(succeeded=False, pod_done=False, final=False, completed=END)

DEL_POD = DeletePod(name="t-1", uid="pod-uid", grace_seconds=None)
DEL_RUN = DeleteTaskRun(uid="run-uid")
STOP = StopSidecar(pod="t-1", container=XCOM_SIDECAR_NAME, uid="pod-uid")


F = FinishSpec
HELD = run(hold=True)
# TaskRunOperator's ask when it shows one container: the log may come from the status.
IN_STATUS = run(hold=True, from_status=True, complete=True)

# (spec, run, pod, ending, settings, seconds after the end) -> (actions, wake seconds after end)
CASES: dict[str, tuple[Any, ...]] = {
    # the finish path
    "succeeded, delete_pod": (F(), run(), pod("Succeeded"), FINAL, 0, [DEL_POD], None),
    "succeeded, keep_pod": (F(on_finish_action=KEEP), run(), pod(), FINAL, 0, [], None),
    "succeeded, delete_succeeded_pod": (
        F(on_finish_action=DELETE_OK), run(), pod(), FINAL, 0, [DEL_POD], None,
    ),
    "failed, delete_succeeded_pod": (
        F(on_finish_action=DELETE_OK), run(), pod(), FAILED, 0, [], None,
    ),
    "given up on, keep_pod": (
        F(on_finish_action=KEEP), run(), pod("Running"), GIVEN_UP, 0, [DEL_POD], None,
    ),
    "held": (F(), HELD, pod(), FINAL, 10, [], HOLD),
    "held, then the hold runs out": (F(), HELD, pod(), FINAL, HOLD, [DEL_POD], None),
    "held, then acked": (F(), run(hold=True, acked=True), pod(), FINAL, 10, [DEL_POD], None),
    "held, given up on": (F(), HELD, pod(), GIVEN_UP, 10, [DEL_POD], None),
    # the log handed over in the status: nothing to wait for
    "log in status": (F(), IN_STATUS, pod(), FINAL, 0, [DEL_POD], None),
    "log in status, failed": (F(), IN_STATUS, pod(), FAILED, 0, [DEL_POD], None),
    "log in status, keep_pod": (F(on_finish_action=KEEP), IN_STATUS, pod(), FINAL, 0, [], None),
    "log in status, failed, delete_succeeded_pod": (
        F(on_finish_action=DELETE_OK), IN_STATUS, pod(), FAILED, 0, [], None,
    ),
    "log in status, exec sidecar still sleeps": (
        F(do_xcom_push=True), IN_STATUS, pod(sidecar_waits=True), FINAL, 0, [DEL_POD], None,
    ),
    "log in status, without the hold": (
        F(), run(from_status=True, complete=True), pod(), FINAL, 0, [DEL_POD], None,
    ),
    "opted in, tail cut": (
        F(), run(hold=True, from_status=True, complete=False), pod(), FINAL, 10, [], HOLD,
    ),
    "opted in, an older controller wrote no complete": (
        F(), run(hold=True, from_status=True), pod(), FINAL, 10, [], HOLD,
    ),
    "opted in, the whole log of an earlier attempt's pod": (
        F(), run(hold=True, from_status=True, complete=True, logs_pod="t-0"), pod(), FINAL, 10,
        [], HOLD,
    ),
    "whole log, an older reader that did not opt in": (
        F(), run(hold=True, complete=True), pod(), FINAL, 10, [], HOLD,
    ),
    "log in status, already acked": (
        F(), run(hold=True, acked=True, from_status=True, complete=True), pod(), FINAL, 10,
        [DEL_POD], None,
    ),
    "already deleting": (F(), run(), pod(deleting=True), FINAL, 0, [], None),
    "no pod": (F(), run(), None, FINAL, 0, [], None),
    "ttl counts down": (F(ttl_seconds_after_finished=60), run(), None, FINAL, 10, [], 60),
    "ttl over": (
        F(ttl_seconds_after_finished=60), run(), pod(), FINAL, 60, [DEL_POD, DEL_RUN], None,
    ),
    "ttl 0 with a held pod": (
        F(ttl_seconds_after_finished=0), HELD, pod(), FINAL, 0, [DEL_RUN], HOLD,
    ),
    "ttl before the hold ends": (
        F(ttl_seconds_after_finished=60), HELD, pod(), FINAL, 10, [], 60,
    ),
    "exec sidecar still sleeps, kept": (
        F(on_finish_action=KEEP, do_xcom_push=True),
        run(), pod(sidecar_waits=True), FINAL, 0, [STOP], None,
    ),
    "exec sidecar still sleeps, held": (
        F(do_xcom_push=True), HELD, pod(sidecar_waits=True), FINAL, 0, [STOP], HOLD,
    ),
    "grace period": (
        F(termination_grace_period=7), run(), pod(), FINAL, 0,
        [DeletePod(name="t-1", uid="pod-uid", grace_seconds=7)], None,
    ),
    # the retry path: no hold, no ttl; a failed attempt's pod kept only as a failed run's is
    "retried, delete_pod": (F(), run(), pod(), RETRIED, 0, [DEL_POD], None),
    "retried, keep_pod": (F(on_finish_action=KEEP), run(), pod(), RETRIED, 0, [], None),
    "retried, delete_succeeded_pod": (
        F(on_finish_action=DELETE_OK), run(), pod(), RETRIED, 0, [], None,
    ),
    "retried, given up on, keep_pod": (
        F(on_finish_action=KEEP), run(), pod("Running"), RETRIED_GIVEN_UP, 0, [DEL_POD], None,
    ),
    "retried, hold not applied": (F(), HELD, pod(), RETRIED, 0, [DEL_POD], None),
    "retried, ttl not counted": (
        F(ttl_seconds_after_finished=0), run(), pod(), RETRIED, 0, [DEL_POD], None,
    ),
    "retried, already deleting": (F(), run(), pod(deleting=True), RETRIED, 0, [], None),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_dispose(case: str) -> None:
    spec, taskrun, the_pod, ending, after, actions, wake = CASES[case]
    settings = EXEC if the_pod and the_pod["status"]["phase"] == "Running" else SETTINGS
    decision = dispose(taskrun, spec, the_pod, ending, settings, END + timedelta(seconds=after))
    assert decision.actions == actions
    assert decision.wake_at == (None if wake is None else END + timedelta(seconds=wake))
    assert not decision.reads


def test_the_retry_path_reads_the_parsed_spec_as_the_finish_path_reads_the_wire() -> None:
    spec = TaskRunSpec(image="i", onFinishAction="delete_succeeded_pod", terminationGracePeriod=3)
    wire = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert FinishSpec.of(spec) == FinishSpec.read(wire)


@given(
    action=st.sampled_from(list(OnFinishAction)),
    ending=st.builds(
        Ending,
        succeeded=st.booleans(),
        pod_done=st.booleans(),
        final=st.booleans(),
        completed=st.just(END),
    ),
    hold=st.booleans(),
    acked=st.booleans(),
    from_status=st.booleans(),
    complete=st.none() | st.booleans(),
    ttl=st.none() | st.integers(-5, 2 * HOLD),
    after=st.integers(0, 2 * HOLD),
    pod_deleting=st.booleans(),
)
def test_dispose_properties(
    action: OnFinishAction,
    ending: Ending,
    hold: bool,
    acked: bool,
    from_status: bool,
    complete: bool | None,
    ttl: int | None,
    after: int,
    pod_deleting: bool,
) -> None:
    spec = FinishSpec(on_finish_action=action, ttl_seconds_after_finished=ttl)
    now = END + timedelta(seconds=after)
    taskrun = run(hold, acked, from_status, complete)
    decision = dispose(taskrun, spec, pod(deleting=pod_deleting), ending, SETTINGS, now)
    deletes_pod = DEL_POD in decision.actions
    in_status = from_status and complete is True
    held = ending.final and hold and not acked and not in_status and after < HOLD
    if pod_deleting:
        assert not deletes_pod  # a pod is deleted once
    elif not ending.pod_done:
        assert deletes_pod  # a pod given up on never stays
    else:
        kept = action == KEEP or (action == DELETE_OK and not ending.succeeded)
        assert deletes_pod is not (kept or held)
    if not ending.final:
        # a retried attempt: the run lives on, and nothing waits on the hold or the ttl
        assert DEL_RUN not in decision.actions and decision.wake_at is None
    else:
        assert (DEL_RUN in decision.actions) is (ttl is not None and after >= ttl)
    if decision.wake_at is not None:
        assert decision.wake_at > now
