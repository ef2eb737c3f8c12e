"""Short logs ride in the status: a TaskRun annotated taskrun.dev/logs-from-status whose
whole log is in status.logs (``complete``) has its pod deleted without an ack; a cut tail,
a reader that did not opt in, or a pod that still ran when its log was read keeps the hold.
"""

from __future__ import annotations

from controller.handlers import Controller
from taskrun.api import ANNOTATION_HOLD_POD, ANNOTATION_LOGS_ACKED, ANNOTATION_LOGS_FROM_STATUS
from tests.integration.conftest import Runs, poll, stays

HOLD = {ANNOTATION_HOLD_POD: "true"}
OPTED_IN = {**HOLD, ANNOTATION_LOGS_FROM_STATUS: "true"}
SHORT = "".join(f"line {i}\n" for i in range(5)) + "no newline at the end"
LONG = "".join(f"line {i}\n" for i in range(150))


def _pod_deletes(runs: Runs) -> int:
    return len([r for r in runs.writes() if r.verb == "delete" and r.resource == "pods"])


def test_a_whole_log_in_status_releases_the_pod_without_an_ack(
    controller: Controller, runs: Runs
) -> None:
    runs.create("short", scenario={"exitCode": 0, "logs": SHORT}, annotations=OPTED_IN)
    status = runs.wait_finished("short")
    logs = status["logs"]
    assert (logs["tail"], logs["truncated"], logs["complete"]) == (SHORT, False, True)
    assert logs["pod"] == status["podName"]
    poll(lambda: runs.pod(status["podName"]) is None, what="the pod to go without an ack")
    annotations = (runs.get("short") or {})["metadata"]["annotations"]
    assert ANNOTATION_LOGS_ACKED not in annotations
    assert _pod_deletes(runs) == 1


def test_a_failed_run_with_a_whole_log_is_released_too(controller: Controller, runs: Runs) -> None:
    runs.create("fails", scenario={"exitCode": 3, "logs": "boom\n"}, annotations=OPTED_IN)
    status = runs.wait_finished("fails")
    assert (status["phase"], status["logs"]["complete"]) == ("Failed", True)
    poll(lambda: runs.pod(status["podName"]) is None, what="the failed run's pod to go")


def test_a_cut_tail_keeps_the_hold(controller: Controller, runs: Runs) -> None:
    runs.create("long", scenario={"exitCode": 0, "logs": LONG}, annotations=OPTED_IN)
    status = runs.wait_finished("long")
    assert (status["logs"]["truncated"], status["logs"]["complete"]) == (True, False)
    stays(lambda: runs.pod(status["podName"]) is not None, what="the held pod being there")
    runs.annotate("long", {ANNOTATION_LOGS_ACKED: "true"})
    poll(lambda: runs.pod(status["podName"]) is None, what="the acked pod to go")


def test_a_reader_that_did_not_opt_in_keeps_the_hold(controller: Controller, runs: Runs) -> None:
    # An older TaskRunOperator (or kubectl taskrun run): the hold only.
    runs.create("older", scenario={"exitCode": 0, "logs": SHORT}, annotations=HOLD)
    status = runs.wait_finished("older")
    assert status["logs"]["complete"] is True
    stays(lambda: runs.pod(status["podName"]) is not None, what="the held pod being there")
    assert _pod_deletes(runs) == 0


def test_a_log_read_while_the_pod_ran_is_not_complete(controller: Controller, runs: Runs) -> None:
    # Cancelled while running: the tail is the log so far, not the whole log.
    runs.create(
        "cancelled",
        scenario={"runSeconds": 30, "logs": "started\n"},
        annotations=OPTED_IN,
        terminationGracePeriod=0,
    )
    runs.wait_status("cancelled", lambda s: s.get("phase") == "Running")
    runs.patch_spec("cancelled", {"cancel": True})
    status = runs.wait_finished("cancelled")
    assert status["phase"] == "Cancelled"
    assert status.get("logs", {}).get("complete") is not True
