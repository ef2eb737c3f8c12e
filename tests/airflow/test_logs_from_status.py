"""Short logs ride in the status: when the tail the controller keeps is the whole log of the
one container the task prints, TaskRunOperator prints it from the TaskRun it already has,
with no log read and no ack, and prints exactly what reading the pod's log would.

The operator's choices are pure (mapping.log_annotations, whole_log_in_status,
lines_after) and tested here against the in-memory API of test_operator.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("airflow.providers.cncf.kubernetes")

from hypothesis import given
from hypothesis import strategies as st

from taskrun.airflow import mapping
from taskrun.api import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_FROM_STATUS,
    ANNOTATION_SPEC_HASH,
    TaskRunSpec,
)
from tests.airflow.test_operator import (  # plain_task_log: the task log caplog sees
    ACK,
    RUNNING,
    FakeApi,
    context,
    done,
    make_op,
    plain_task_log,  # noqa: F401
    shown,
)

HOLD = {ANNOTATION_HOLD_POD: "true"}
FROM_STATUS = {**HOLD, ANNOTATION_LOGS_FROM_STATUS: "true"}
PLAIN = TaskRunSpec(image="i")
WITH_INIT = TaskRunSpec(image="i", initContainers=[{"name": "setup", "image": "i"}])


# --- the operator's choice --------------------------------------------------------------------

# (get_logs, init_container_logs, base_container_name, spec) -> annotations
CHOICES: dict[str, tuple[Any, ...]] = {
    "the base container": (True, None, "base", PLAIN, FROM_STATUS),
    "another base container name": (
        True, None, "main", TaskRunSpec(image="i", baseContainerName="main"), FROM_STATUS,
    ),
    "one other container": (
        True, None, "base", TaskRunSpec(image="i", containerLogs=["helper"]), FROM_STATUS,
    ),
    "two containers: headers could be imitated": (
        True, None, "base", TaskRunSpec(image="i", containerLogs=["base", "helper"]), HOLD,
    ),
    "init container logs: not in the tail": (
        True, ["setup"], "base", WITH_INIT, HOLD,
    ),
    "init_container_logs=True with an init container": (
        True, True, "base", WITH_INIT, HOLD,
    ),
    "init_container_logs=True without one": (True, True, "base", PLAIN, FROM_STATUS),
    "getLogs off in the spec: no tail is kept": (
        True, None, "base", TaskRunSpec(image="i", getLogs=False), HOLD,
    ),
    "get_logs=False": (False, None, "base", PLAIN, {}),
}  # fmt: skip


@pytest.mark.parametrize("case", CHOICES)
def test_log_annotations(case: str) -> None:
    get_logs, init_logs, base, spec, annotations = CHOICES[case]
    printed = mapping.logged_containers(init_logs, base, spec)
    assert mapping.log_annotations(get_logs, printed, spec) == annotations


def _taskrun(annotations: dict[str, str], **logs: Any) -> dict[str, Any]:
    whole = {"pod": "p-1", "container": "base", "tail": "a\nb\n", "complete": True, **logs}
    return {
        "metadata": {"annotations": annotations},
        "status": {"phase": "Succeeded", "podName": "p-1", "logs": whole},
    }


# (TaskRun annotations, status.logs changes, containers printed) -> the log from the status
USES: dict[str, tuple[Any, ...]] = {
    "opted in, whole": (FROM_STATUS, {}, ["base"], "a\nb\n"),
    "an empty log": (FROM_STATUS, {"tail": ""}, ["base"], ""),
    "not opted in (an older operator's TaskRun, reattached)": (HOLD, {}, ["base"], None),
    "cut": (FROM_STATUS, {"complete": False, "truncated": True}, ["base"], None),
    "an older controller: no complete": (FROM_STATUS, {"complete": None}, ["base"], None),
    "the log of an earlier attempt's pod": (FROM_STATUS, {"pod": "p-0"}, ["base"], None),
    "another container than the task prints": (FROM_STATUS, {}, ["helper"], None),
    "several containers printed": (FROM_STATUS, {}, ["base", "helper"], None),
    "no tail (cut away for the status budget)": (FROM_STATUS, {"tail": None}, ["base"], None),
}  # fmt: skip


@pytest.mark.parametrize("case", USES)
def test_whole_log_in_status(case: str) -> None:
    annotations, logs, printed, expected = USES[case]
    taskrun = _taskrun(annotations, **logs)
    assert mapping.whole_log_in_status(taskrun, printed) == expected


# --- the same lines as the pod's log ----------------------------------------------------------


def _read_lines(log: bytes, skip: int) -> list[str]:
    """What the operator prints from the pod's log read: each line decoded on its own."""
    return [line.decode("utf-8", "replace").rstrip("\r") for line in log[skip:].splitlines()]


def _streamed(log: bytes, lines: int) -> int:
    """The bytes of the first ``lines`` whole lines: what the blocking operator followed."""
    return sum(len(line) + 1 for line in log.split(b"\n")[:lines])


log_bytes = st.lists(
    st.sampled_from([b"a", b"\n", b"\r", b"\r\n", "é".encode(), b"\xff", b"\xe2\x82", b" "]),
    max_size=30,
).map(b"".join) | st.binary(max_size=60)


@given(log=log_bytes, data=st.data())
def test_the_status_tail_prints_what_the_pod_log_read_prints(log: bytes, data: Any) -> None:
    # The controller keeps the log decoded with U+FFFD for invalid bytes (tails.tail_of).
    tail = log.decode("utf-8", "replace")
    lines = data.draw(st.integers(0, log.count(b"\n")))
    from_status = [
        line.decode("utf-8", "replace").rstrip("\r") for line in mapping.lines_after(tail, lines)
    ]
    assert from_status == _read_lines(log, _streamed(log, lines))


# --- the operator -------------------------------------------------------------------------------


def _whole(tail: str) -> dict[str, Any]:
    return {"pod": "p-1", "container": "base", "tail": tail, "truncated": False, "complete": True}


LOG = b"one\ntwo\r\nthree"  # a last line without "\n", as a log may end


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_a_whole_log_in_status_is_printed_without_a_read_or_an_ack(
    caplog: pytest.LogCaptureFixture, deferrable: bool
) -> None:
    from taskrun.airflow.compat import TaskDeferred

    status = done("Succeeded", logs=_whole(LOG.decode()))
    api = FakeApi([] if deferrable else [status], logs={"p-1": LOG})
    op = make_op(api, deferrable=deferrable)
    with caplog.at_level(logging.INFO):
        if deferrable:
            with pytest.raises(TaskDeferred) as info:
                op.execute(context())
            name = info.value.trigger.serialize()[1]["name"]
            api.taskruns[(name, "ns")]["status"] = status
            event = {"status": "done", "name": name, "namespace": "ns", "phase": "Succeeded"}
            event["taskrun"] = api.get(name, "ns")
            op.execute_complete(context(), event)
        else:
            op.execute(context())
    assert shown(caplog) == ["[base] one", "[base] two", "[base] three"]
    assert api.log_reads == []
    assert api.patches == []
    meta = api.creates[0]["metadata"]
    assert meta["annotations"] == {
        **FROM_STATUS,
        ANNOTATION_SPEC_HASH: meta["annotations"][ANNOTATION_SPEC_HASH],
    }


def test_blocking_prints_only_what_it_did_not_follow(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeApi([RUNNING, done("Succeeded", logs=_whole("a\nb\nc\nd\n"))], logs={"p-1": b""})
    # The stream broke after "a\nb\nc": two whole lines shown, "c" was not complete.
    api.logs["p-1"] = b"a\nb\nc\nd\n"
    api.follow_breaks_after = 5
    with caplog.at_level(logging.INFO):
        make_op(api).execute(context())
    assert shown(caplog) == ["[base] a", "[base] b", "[base] c", "[base] d"]
    assert api.log_reads == [] and api.patches == []


def test_blocking_prints_another_logged_container_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It follows the base container while the pod runs, and shows the one logged container.
    whole = {**_whole("helper says\n"), "container": "helper"}
    api = FakeApi([RUNNING, done("Succeeded", logs=whole)], logs={"p-1": b"base says\n"})
    with caplog.at_level(logging.INFO):
        make_op(api, container_logs="helper").execute(context())
    assert shown(caplog) == ["[base] base says", "[helper] helper says"]
    assert api.log_reads == [] and api.patches == []


def test_a_retried_run_prints_the_last_attempts_log(caplog: pytest.LogCaptureFixture) -> None:
    first = {"phase": "Running", "podName": "p-0"}
    retrying = {"phase": "Pending", "podName": "p-0", "reason": "Retrying"}
    second = {"phase": "Running", "podName": "p-1"}
    api = FakeApi(
        [first, retrying, second, done("Succeeded", logs=_whole("second\n"))],
        logs={"p-0": b"first\n", "p-1": b"second\n"},
    )
    with caplog.at_level(logging.INFO):
        make_op(api).execute(context())
    # Each attempt followed while it ran; nothing of the last printed twice.
    assert shown(caplog) == ["[base] first", "[base] second"]
    assert api.log_reads == [] and api.patches == []


@pytest.mark.parametrize(
    "logs",
    [
        {**_whole("one\n"), "complete": False, "truncated": True},
        {k: v for k, v in _whole("one\n").items() if k != "complete"},
    ],
    ids=["cut", "older-controller"],
)
def test_otherwise_the_pod_is_read_and_acked(
    caplog: pytest.LogCaptureFixture, logs: dict[str, Any]
) -> None:
    api = FakeApi([done("Succeeded", logs=logs)], logs={"p-1": b"zero\none\n"})
    with caplog.at_level(logging.INFO):
        make_op(api).execute(context())
    assert shown(caplog) == ["[base] zero", "[base] one"]
    assert api.log_reads == [("p-1", "base")]
    assert api.patches == [ACK]


def test_a_taskrun_of_an_older_operator_is_read_and_acked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A restarted worker (new operator) reattaches to what the old one created: hold only.
    api = FakeApi([done("Succeeded", logs=_whole("one\n"))], logs={"p-1": b"one\n"})
    op = make_op(api)
    body = op.build_taskrun(context())
    del body["metadata"]["annotations"][ANNOTATION_LOGS_FROM_STATUS]
    api.create_or_get(body)
    with caplog.at_level(logging.INFO):
        op.execute(context())
    assert shown(caplog) == ["[base] one"]
    assert api.log_reads == [("p-1", "base")] and api.patches == [ACK]


def test_a_failed_run_with_a_whole_log_prints_it_and_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from taskrun.airflow.compat import AirflowException

    status = done("Failed", reason="ExitCode", message="exit 3", logs=_whole("boom\n"))
    api = FakeApi([status], logs={"p-1": b"boom\n"})
    with caplog.at_level(logging.INFO), pytest.raises(AirflowException, match="boom"):
        make_op(api).execute(context())
    assert shown(caplog) == ["[base] boom"]
    assert api.log_reads == [] and api.patches == []
