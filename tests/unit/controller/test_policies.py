"""policies.decide: one case per rung of the ladder, with a fixed clock."""

from __future__ import annotations

import copy
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from controller.core.actions import (
    CoreSettings,
    CreatePod,
    Decision,
    DeletePod,
    DeleteTaskRun,
    EmitEvent,
    Gathered,
    Observation,
    PatchStatus,
    ReadEvents,
    ReadLogTail,
    ReadResult,
)
from controller.core.clock import format_time, parse_time
from controller.core.policies import decide
from controller.core.results import Result
from controller.core.tails import LogTail, tail_of
from taskrun.api import Reason
from taskrun.api.crd import DEFAULT_STATUS
from tests.unit.controller.test_status import T0, pod, running, taskrun, terminated

NOW = parse_time(T0)
LATER = NOW + timedelta(seconds=30)
SETTINGS = CoreSettings()


def run(
    tr: dict[str, Any],
    the_pod: dict[str, Any] | None = None,
    *,
    now=LATER,
    gathered: Gathered | None = None,
    create_error=None,
    settings: CoreSettings = SETTINGS,
) -> Decision:
    obs = Observation(tr, the_pod, now, gathered=gathered, create_error=create_error)
    return decide(obs, settings)


def finish(tr, the_pod, *, now=LATER, gathered=None, settings=SETTINGS) -> Decision:
    """Decide twice, as the caller does: reads first, then the decision with their answers."""
    first = run(tr, the_pod, now=now, settings=settings)
    if not first.reads:
        return first
    return run(tr, the_pod, now=now, gathered=gathered or Gathered(), settings=settings)


def patched(decision: Decision) -> dict[str, Any]:
    patches = [a.patch for a in decision.actions if isinstance(a, PatchStatus)]
    assert len(patches) == 1, decision
    return patches[0]


def of(decision: Decision, kind: type) -> list[Any]:
    return [a for a in decision.actions if isinstance(a, kind)]


RUNNING_STATUS = {
    "phase": "Running",
    "reason": "Running",
    "podName": "run-1",
    "attempts": 1,
    "startTime": T0,
}


# --- creating the pod ------------------------------------------------------------------------


def test_a_new_taskrun_gets_the_pod_of_attempt_one_and_nothing_else():
    decision = run(taskrun())
    (create,) = decision.actions
    assert isinstance(create, CreatePod)
    assert create.attempt == 1
    assert create.pod["metadata"]["name"] == "run-1"
    assert create.pod["metadata"]["ownerReferences"][0]["uid"] == "tr-uid"


@pytest.mark.parametrize(
    ("spec", "reason", "names"),
    [
        ({"retries": -1}, Reason.INVALID_SPEC, "spec.retries"),
        ({"onFinishAction": "explode"}, Reason.INVALID_SPEC, "spec.onFinishAction"),
        (
            {"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            Reason.INVALID_SPEC,
            "spec.volumeMounts",
        ),
        ({"hostNetwork": True}, Reason.POLICY_DENIED, "hostNetwork"),
        (
            {"containerSecurityContext": {"privileged": True}},
            Reason.POLICY_DENIED,
            "privileged",
        ),
    ],
)
def test_specs_that_cannot_run_end_failed_naming_the_field(spec, reason, names):
    decision = run(taskrun(**spec))
    patch = patched(decision)
    assert patch["phase"] == "Failed"
    assert patch["reason"] == reason
    assert names in patch["message"]
    assert patch["conditions"][0]["status"] == "False"
    assert not of(decision, CreatePod)
    (event,) = of(decision, EmitEvent)
    assert (event.type, event.reason) == ("Warning", str(reason))


def test_a_refused_pod_create_ends_invalid_spec_with_the_servers_message():
    message = "the API server refused the pod: Pod is invalid: spec.containers[0].image"
    decision = run(taskrun(), create_error=(Reason.INVALID_SPEC, message))
    patch = patched(decision)
    assert (patch["phase"], patch["reason"], patch["message"]) == ("Failed", "InvalidSpec", message)


# --- a running attempt -----------------------------------------------------------------------


def test_a_created_pod_is_reported_pending_once_it_has_waited():
    tr = taskrun()
    the_pod = pod("Pending", scheduled=False, started=None)
    # Just created: no write yet, a wake-up when the quiet time is over.
    quiet = run(tr, the_pod, now=NOW)
    assert quiet.actions == []
    assert quiet.wake_at == NOW + timedelta(seconds=SETTINGS.pending_report_seconds)
    decision = run(tr, the_pod, now=quiet.wake_at)
    patch = patched(decision)
    assert patch["phase"] == "Pending"
    assert patch["reason"] == "PodCreated"
    assert patch["podName"] == "run-1"
    assert patch["attempts"] == 1
    assert patch["startTime"] == T0  # the pod's creation, not the write's time
    assert patch["logs"]["command"] == "kubectl logs -n ns run-1 -c base"
    # the same world again: nothing to write
    settled = taskrun(status=_apply(tr.get("status") or {}, patch))
    assert run(settled, the_pod, now=quiet.wake_at).actions == []


@pytest.mark.parametrize(
    ("the_pod", "seconds", "written"),
    [
        # a pod that starts within the quiet time is reported Running at once
        (pod("Running", base=running()), 2.0, "Running"),
        # a pod the scheduler refuses is news at once
        (
            pod("Pending", scheduled="0/1 nodes are available", started=None),
            2.0,
            "Pending",
        ),
        # 0 turns the quiet time off
        (pod("Pending", scheduled=False, started=None), 0.0, "Pending"),
    ],
)
def test_what_is_written_inside_the_quiet_time(the_pod, seconds, written):
    settings = CoreSettings(pending_report_seconds=seconds)
    assert patched(run(taskrun(), the_pod, now=NOW, settings=settings))["phase"] == written


def test_running_patches_only_what_changed():
    status = {
        **RUNNING_STATUS,
        "phase": "Pending",
        "reason": "PodCreated",
        "message": "pod run-1 created",
        "observedGeneration": 1,
        "logs": {
            "namespace": "ns",
            "pod": "run-1",
            "container": "base",
            "command": "kubectl logs -n ns run-1 -c base",
        },
        "conditions": [
            {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "PodCreated",
                "lastTransitionTime": T0,
            }
        ],
    }
    decision = run(taskrun(status=status), pod("Running", base=running()))
    patch = patched(decision)
    assert set(patch) == {"phase", "reason", "message", "conditions"}
    assert patch["conditions"][0]["lastTransitionTime"] == T0
    (event,) = of(decision, EmitEvent)
    assert (event.type, event.reason) == ("Normal", "Running")


# --- the end of an attempt -------------------------------------------------------------------


def test_a_finished_pod_is_read_before_anything_is_written():
    decision = run(taskrun(status=RUNNING_STATUS), pod("Succeeded", base=terminated(0)))
    assert decision.actions == []
    (tail,) = [r for r in decision.reads if isinstance(r, ReadLogTail)]
    assert (tail.container, tail.lines, tail.max_bytes) == ("base", 100, 16384)


def _restarted(the_pod: dict[str, Any]) -> dict[str, Any]:
    the_pod["status"]["containerStatuses"][0]["restartCount"] = 1
    return the_pod


@pytest.mark.parametrize(
    ("the_pod", "read"),
    [
        (pod("Succeeded", base=terminated(0)), False),
        (_restarted(pod("Succeeded", base=terminated(0))), True),
        (pod("Failed", base=terminated(1)), True),
        (pod("Failed", base=terminated(137)), True),
    ],
    ids=["clean-success", "success-after-a-restart", "exit-1", "exit-137"],
)
def test_the_pods_events_are_read_unless_it_simply_succeeded(
    the_pod: dict[str, Any], read: bool
) -> None:
    # A clean success skips the Events list: without a watch cache it is an etcd read of
    # the namespace's every Event, the largest per-run cost on a real API server.
    decision = run(taskrun(status=RUNNING_STATUS), the_pod)
    assert (ReadEvents(pod="run-1", uid="pod-uid") in decision.reads) is read


def test_success_writes_status_then_deletes_the_pod():
    gathered = Gathered(logs={"base": LogTail("done\n")})
    decision = finish(
        taskrun(status=RUNNING_STATUS), pod("Succeeded", base=terminated(0)), gathered=gathered
    )
    kinds = [type(a) for a in decision.actions]
    assert kinds == [PatchStatus, EmitEvent, DeletePod]
    patch = patched(decision)
    assert patch["phase"] == "Succeeded"
    assert patch["exitCode"] == 0
    assert patch["completionTime"] == format_time(LATER)
    assert patch["duration"] == "30s"
    assert patch["logs"]["tail"] == "done\n"
    assert patch["conditions"][0]["status"] == "True"
    assert of(decision, DeletePod) == [DeletePod("run-1", "pod-uid", None)]


@pytest.mark.parametrize(
    ("action", "pod_phase", "code", "deleted"),
    [
        ("delete_pod", "Succeeded", 0, True),
        ("delete_pod", "Failed", 1, True),
        ("delete_succeeded_pod", "Succeeded", 0, True),
        ("delete_succeeded_pod", "Failed", 1, False),
        ("keep_pod", "Succeeded", 0, False),
        ("keep_pod", "Failed", 1, False),
    ],
)
def test_finish_actions(action, pod_phase, code, deleted):
    tr = taskrun(status=RUNNING_STATUS, onFinishAction=action)
    decision = finish(tr, pod(pod_phase, base=terminated(code)))
    assert bool(of(decision, DeletePod)) is deleted


def test_a_pod_given_up_on_is_deleted_even_with_keep_pod():
    tr = taskrun(status=RUNNING_STATUS, onFinishAction="keep_pod", terminationGracePeriod=7)
    the_pod = pod("Pending", base={"waiting": {"reason": "InvalidImageName"}})
    decision = finish(tr, the_pod)
    assert patched(decision)["reason"] == "ImagePullFailed"
    assert of(decision, DeletePod) == [DeletePod("run-1", "pod-uid", 7)]


FINISHED = {
    **RUNNING_STATUS,
    "phase": "Succeeded",
    "reason": "Succeeded",
    "completionTime": T0,
}


def test_a_finished_run_deletes_a_pod_left_behind_by_a_restart():
    decision = run(taskrun(status=FINISHED), pod("Succeeded", base=terminated(0)))
    assert decision.actions == [DeletePod("run-1", "pod-uid", None)]


def test_a_finished_run_whose_pod_is_going_does_nothing():
    the_pod = pod("Succeeded", base=terminated(0), deleting=True)
    assert run(taskrun(status=FINISHED), the_pod) == Decision()


def test_ttl_deletes_the_taskrun_when_due():
    tr = taskrun(status=FINISHED, ttlSecondsAfterFinished=60)
    early = run(tr, None, now=NOW + timedelta(seconds=59))
    assert early.actions == []
    assert early.wake_at == NOW + timedelta(seconds=60)
    due = run(tr, None, now=NOW + timedelta(seconds=60))
    assert due.actions == [DeleteTaskRun(uid="tr-uid")]


HOLD = {"taskrun.dev/hold-pod-until-ack": "true"}


def test_a_held_pod_waits_for_the_ack():
    the_pod = pod("Succeeded", base=terminated(0))
    held = run(taskrun(status=FINISHED, annotations=HOLD), the_pod)
    assert held.actions == []
    assert held.wake_at == NOW + timedelta(seconds=600)
    acked = {**HOLD, "taskrun.dev/logs-acked": "true"}
    assert of(run(taskrun(status=FINISHED, annotations=acked), the_pod), DeletePod)


def test_a_held_pod_goes_after_the_max_hold():
    the_pod = pod("Succeeded", base=terminated(0))
    tr = taskrun(status=FINISHED, annotations=HOLD)
    settings = CoreSettings(max_hold_seconds=5)
    assert run(tr, the_pod, now=NOW + timedelta(seconds=4), settings=settings).actions == []
    late = run(tr, the_pod, now=NOW + timedelta(seconds=5), settings=settings)
    assert of(late, DeletePod)


# --- cancel, pod gone ------------------------------------------------------------------------


def test_cancel_stops_the_pod_with_its_grace_period():
    tr = taskrun(status=RUNNING_STATUS, cancel=True, terminationGracePeriod=3)
    decision = finish(tr, pod("Running", base=running()))
    patch = patched(decision)
    assert (patch["phase"], patch["reason"]) == ("Cancelled", "Cancelled")
    assert patch["conditions"][0]["status"] == "False"
    assert of(decision, DeletePod) == [DeletePod("run-1", "pod-uid", 3)]


def test_cancel_before_any_pod_ends_cancelled_without_one():
    decision = run(taskrun(cancel=True))
    assert patched(decision)["phase"] == "Cancelled"
    assert not of(decision, CreatePod)


def test_a_pod_deleted_by_someone_else_is_pod_deleted():
    decision = run(taskrun(status=RUNNING_STATUS), None)
    patch = patched(decision)
    assert (patch["phase"], patch["reason"]) == ("Failed", "PodDeleted")
    assert "run-1" in patch["message"]


# --- retries ---------------------------------------------------------------------------------


def test_a_failure_with_retries_left_records_history_and_waits_for_the_backoff():
    tr = taskrun(status=RUNNING_STATUS, retries=2, retryBackoff={"initialSeconds": 10})
    decision = finish(tr, pod("Failed", base=terminated(4)))
    patch = patched(decision)
    assert (patch["phase"], patch["reason"]) == ("Pending", "Retrying")
    assert patch["conditions"][0]["status"] == "Unknown"
    (record,) = patch["history"]
    assert record["attempt"] == 1
    assert record["podName"] == "run-1"
    assert (record["reason"], record["exitCode"]) == ("ExitCode", 4)
    assert decision.wake_at == LATER + timedelta(seconds=10)
    assert of(decision, DeletePod)


def test_the_next_attempt_starts_after_the_backoff_with_a_new_pod_name():
    history = [{"attempt": 1, "podName": "run-1", "completionTime": T0, "phase": "Failed"}]
    status = {**RUNNING_STATUS, "phase": "Pending", "reason": "Retrying", "history": history}
    tr = taskrun(status=status, retries=2, retryBackoff={"initialSeconds": 10})
    waiting = run(tr, None, now=NOW + timedelta(seconds=9))
    assert waiting.actions == []
    assert waiting.wake_at == NOW + timedelta(seconds=10)
    due = run(tr, None, now=NOW + timedelta(seconds=10))
    (create,) = due.actions
    assert isinstance(create, CreatePod)
    assert (create.attempt, create.pod["metadata"]["name"]) == (2, "run-2")


def test_the_last_attempt_ends_failed_with_the_whole_history():
    history = [{"attempt": 1, "podName": "run-1", "completionTime": T0, "phase": "Failed"}]
    status = {**RUNNING_STATUS, "podName": "run-2", "attempts": 2, "history": history}
    tr = taskrun(status=status, retries=1)
    decision = finish(tr, pod("Failed", name="run-2", base=terminated(4)))
    patch = patched(decision)
    assert (patch["phase"], patch["reason"]) == ("Failed", "ExitCode")
    assert [r["attempt"] for r in patch["history"]] == [1, 2]


@pytest.mark.parametrize("reason", [Reason.INVALID_SPEC, Reason.POD_NAME_CONFLICT])
def test_failures_of_the_taskrun_itself_are_not_retried(reason):
    decision = run(taskrun(retries=3), create_error=(reason, "no"))
    assert patched(decision)["phase"] == "Failed"


# --- results ---------------------------------------------------------------------------------


def sidecar(message: str) -> dict[str, Any]:
    return {"terminated": {"exitCode": 0, "message": message}}


def inline(text: str) -> str:
    """The sidecar's inline hand-over of ``text``: size and sha256, then the bytes."""
    data = text.encode()
    return f"inline:{len(data)}:{hashlib.sha256(data).hexdigest()}:{text}"


XCOM = {"status": RUNNING_STATUS, "doXcomPush": True}


def test_an_inline_result_is_stored_byte_for_byte():
    the_pod = pod("Succeeded", base=terminated(0), sidecar=sidecar(inline('{"a": 1}')))
    patch = patched(finish(taskrun(**XCOM), the_pod))
    assert (patch["result"], patch["resultSize"]) == ('{"a": 1}', 8)


def test_a_log_hand_over_is_read_then_stored():
    message = "log:5000:" + "a" * 64
    the_pod = pod("Succeeded", base=terminated(0), sidecar=sidecar(message))
    first = run(taskrun(**XCOM), the_pod)
    assert ReadResult("run-1", "airflow-xcom-sidecar", 5000, "a" * 64) in first.reads
    text = '"' + "x" * 4998 + '"'
    gathered = Gathered(result=Result(text=text, size=5000))
    patch = patched(run(taskrun(**XCOM), the_pod, gathered=gathered))
    assert patch["result"] == text
    assert patch["phase"] == "Succeeded"


def test_a_result_over_the_cap_fails_the_run():
    the_pod = pod("Succeeded", base=terminated(0), sidecar=sidecar(inline('"abcdef"')))
    patch = patched(finish(taskrun(**XCOM), the_pod, settings=CoreSettings(max_result_bytes=4)))
    assert (patch["phase"], patch["reason"]) == ("Failed", "ResultTooLarge")
    assert "8 bytes" in patch["message"]
    assert "allowed 4 bytes" in patch["message"]
    assert "result" not in patch


def test_invalid_json_fails_the_run():
    the_pod = pod("Succeeded", base=terminated(0), sidecar=sidecar(inline("{nope")))
    patch = patched(finish(taskrun(**XCOM), the_pod))
    assert (patch["phase"], patch["reason"]) == ("Failed", "ResultInvalid")


def test_a_result_is_kept_when_the_base_container_failed():
    the_pod = pod("Failed", base=terminated(2), sidecar=sidecar(inline('{"partial": true}')))
    patch = patched(finish(taskrun(**XCOM), the_pod))
    assert (patch["phase"], patch["reason"], patch["exitCode"]) == ("Failed", "ExitCode", 2)
    assert patch["result"] == '{"partial": true}'


def test_no_hand_over_means_no_result():
    the_pod = pod("Succeeded", base=terminated(0), sidecar=sidecar("none"))
    patch = patched(finish(taskrun(**XCOM), the_pod))
    assert patch["phase"] == "Succeeded"
    assert "result" not in patch


# --- logs and events -------------------------------------------------------------------------

EVENTS = [
    {"type": "Normal", "reason": "Pulled", "message": "pulled"},
    {
        "type": "Warning",
        "reason": "BackOff",
        "message": "back-off",
        "count": 3,
        "lastTimestamp": T0,
    },
]


def test_warnings_are_mirrored_and_logged_on_failure_when_asked():
    tr = taskrun(status=RUNNING_STATUS, logEventsOnFailure=True)
    decision = finish(tr, pod("Failed", base=terminated(1)), gathered=Gathered(events=EVENTS))
    patch = patched(decision)
    assert patch["warnings"] == [
        {"reason": "BackOff", "message": "back-off", "count": 3, "lastTimestamp": T0}
    ]
    assert "Warning BackOff: back-off" in patch["message"]
    assert "Normal Pulled: pulled" in patch["message"]


def test_events_stay_out_of_the_message_by_default():
    tr = taskrun(status=RUNNING_STATUS)
    decision = finish(tr, pod("Failed", base=terminated(1)), gathered=Gathered(events=EVENTS))
    assert "BackOff" not in patched(decision)["message"]


def test_several_log_containers_are_kept_under_headers():
    tr = taskrun(status=RUNNING_STATUS, containerLogs=["base", "helper"])
    the_pod = pod("Failed", base=terminated(1), extra=[{"name": "helper", "state": terminated(0)}])
    reads = run(tr, the_pod).reads
    assert {r.container for r in reads if isinstance(r, ReadLogTail)} == {"base", "helper"}
    gathered = Gathered(logs={"base": LogTail("b\n"), "helper": LogTail("h\n", truncated=True)})
    logs = patched(run(tr, the_pod, gathered=gathered))["logs"]
    assert logs["tail"] == "==> base <==\nb\n==> helper <==\nh\n"
    assert logs["truncated"] is True


def test_no_log_reads_when_get_logs_is_off():
    tr = taskrun(status=RUNNING_STATUS, getLogs=False)
    reads = run(tr, pod("Failed", base=terminated(1))).reads
    assert not [r for r in reads if isinstance(r, ReadLogTail)]


@pytest.mark.parametrize(
    ("log", "lines", "max_bytes", "tail", "truncated"),
    [
        (b"", 3, 100, "", False),
        (b"a\nb\n", 3, 100, "a\nb\n", False),
        (b"a\nb\nc\n", 3, 100, "a\nb\nc\n", False),
        (b"a\nb\nc\nd\n", 3, 100, "b\nc\nd\n", True),
        (b"aaaa\nbbbb\ncc\n", 3, 8, "bbbb\ncc\n", True),
        (b"0123456789", 3, 4, "6789", True),
        ("é".encode() * 3, 1, 3, "é", True),
        (b"no newline", 3, 100, "no newline", False),
    ],
)
def test_tail_of_bounds_lines_and_bytes(log, lines, max_bytes, tail, truncated):
    got = tail_of(log, lines, max_bytes)
    assert (got.text, got.truncated) == (tail, truncated)
    assert len(got.text.encode()) <= max_bytes


def _apply(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = dict(current)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _apply(result[key], value)
        else:
            result[key] = value
    return result


def test_a_new_attempt_does_not_show_the_last_attempts_exit_code():
    history = [{"attempt": 1, "podName": "run-1", "completionTime": T0, "phase": "Failed"}]
    status = {**RUNNING_STATUS, "reason": "Retrying", "exitCode": 4, "history": history}
    decision = run(taskrun(status=status, retries=1), pod("Running", name="run-2", base=running()))
    patch = patched(decision)
    assert patch["exitCode"] is None
    assert patch["podName"] == "run-2"
    assert patch["attempts"] == 2


# --- the CRD's default status ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_pod", "now"),
    [
        (None, NOW),  # no pod yet: create it
        (pod("Pending", scheduled=False, started=None), NOW),  # quiet time: no write
        (pod("Pending", scheduled=False, started=None), LATER),  # first write
        (pod("Running", base=running()), NOW),  # first write, Running
    ],
)
def test_the_crds_default_status_is_no_status(the_pod, now):
    # The API server fills DEFAULT_STATUS in until the first write (taskrun/api/crd.py):
    # the same decisions, and the first write's conditions start now, not in 1970.
    defaulted = run(taskrun(status=copy.deepcopy(DEFAULT_STATUS)), the_pod, now=now)
    assert defaulted == run(taskrun(), the_pod, now=now)
    for action in of(defaulted, PatchStatus):
        times = {c["lastTransitionTime"] for c in action.patch["conditions"]}
        assert times == {format_time(now)}
