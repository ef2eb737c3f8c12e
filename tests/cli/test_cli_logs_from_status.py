"""`kubectl taskrun run` takes a short log from the status (taskrun.api.handover): it opts in
when it shows the one container status.logs covers, prints what it has not printed yet of a
whole log in the status, no more, and sends no ack; a log longer than the tail is read from
the pod and acknowledged as before. Requests are counted from devcluster's request log."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cli_helpers import SCENARIO, Kubectl, integration
from hypothesis import given
from hypothesis import strategies as st

from taskrun.api import ANNOTATION_HOLD_POD, ANNOTATION_LOGS_ACKED, ANNOTATION_LOGS_FROM_STATUS
from taskrun.cli.client import USER_AGENT, Client
from taskrun.cli.follow import Follower, log_annotations, unprinted
from taskrun.cli.kubeconfig import load

SHORT = "".join(f"line {i}\n" for i in range(5)) + "no newline at the end"
LONG = "".join(f"line {i}\n" for i in range(150))  # over the default 100 tail lines


def scenario(**keys: object) -> str:
    return f"{SCENARIO}={json.dumps(keys)}"


def _reads_and_acks(cluster: Any, namespace: str) -> tuple[int, int]:
    """The plugin's pod log requests (follows included) and its log acks in ``namespace``."""
    mine = cluster.requests.filter(namespace=namespace, user_agent=USER_AGENT)
    reads = [r for r in mine if (r.resource, r.subresource) == ("pods", "log")]
    acks = [r for r in mine if (r.verb, r.resource) == ("patch", "taskruns")]
    return len(reads), len(acks)


@pytest.fixture
def late_watch(cluster: Any) -> Iterator[None]:
    """The plugin's watch answered 3 s late: the run has ended when the plugin first sees
    it, so it never follows the running pod."""
    faults = cluster.devcluster.faults
    faults.user_agent_prefix, faults.verbs, faults.latency = USER_AGENT, frozenset({"watch"}), 3
    try:
        yield
    finally:
        faults.clear()


def _annotations(runs: Any, name: str) -> dict[str, str]:
    return dict(((runs.get(name) or {}).get("metadata") or {}).get("annotations") or {})


LATE = pytest.mark.devcluster_only("the plugin's watch answered late (a fault plan)")


@LATE
def test_a_short_log_of_an_ended_run_comes_from_the_status_with_no_read_and_no_ack(
    kubectl: Kubectl, cluster: Any, runs: Any, late_watch: None
) -> None:
    ran = kubectl("taskrun", "run", "short", "--image", "busybox",
                  "--pod-annotation", scenario(logs=SHORT))  # fmt: skip
    assert ran.out == SHORT  # once, in order, as the pod's log read prints it
    assert "is gone" not in ran.err and "taskrun/short Succeeded" in ran.err
    assert _reads_and_acks(cluster, runs.namespace) == (0, 0)
    annotations = _annotations(runs, "short")
    assert annotations[ANNOTATION_LOGS_FROM_STATUS] == "true"
    assert ANNOTATION_LOGS_ACKED not in annotations
    pod = runs.status("short")["podName"]
    integration.poll(lambda: runs.pod(pod) is None, what="the pod to go without an ack")


def test_a_short_log_followed_while_the_pod_ran_is_not_printed_again_nor_acked(
    kubectl: Kubectl, cluster: Any, runs: Any
) -> None:
    # The lines are spread over 3 s: the plugin follows the running pod to the log's end.
    ran = kubectl("taskrun", "run", "followed", "--image", "busybox",
                  "--pod-annotation", scenario(logs=SHORT, runSeconds=3))  # fmt: skip
    assert ran.out == SHORT
    assert _reads_and_acks(cluster, runs.namespace) == (1, 0)  # the follow only
    assert ANNOTATION_LOGS_ACKED not in _annotations(runs, "followed")


@LATE
def test_a_long_log_is_read_from_the_pod_and_acked(
    kubectl: Kubectl, cluster: Any, runs: Any, late_watch: None
) -> None:
    ran = kubectl("taskrun", "run", "long", "--image", "busybox",
                  "--pod-annotation", scenario(logs=LONG))  # fmt: skip
    assert ran.out == LONG
    assert runs.status("long")["logs"]["complete"] is not True
    assert _reads_and_acks(cluster, runs.namespace) == (1, 1)
    assert _annotations(runs, "long")[ANNOTATION_LOGS_ACKED] == "true"


def test_a_run_logging_other_containers_keeps_the_hold_and_a_rerun_asks_afresh(
    kubectl: Kubectl, runs: Any
) -> None:
    manifest = {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": "two", "annotations": {ANNOTATION_LOGS_FROM_STATUS: "true"}},
        "spec": {"image": "busybox", "containerLogs": ["base", "other"]},
    }
    kubectl("taskrun", "run", "-f", "-", stdin=yaml.safe_dump(manifest))
    annotations = _annotations(runs, "two")
    assert annotations[ANNOTATION_HOLD_POD] == "true"
    assert ANNOTATION_LOGS_FROM_STATUS not in annotations  # the manifest's is not the plugin's
    kubectl("taskrun", "run", "one", "--image", "busybox")
    again = kubectl("taskrun", "rerun", "one", "-o", "name").out.strip().rpartition("/")[2]
    # Not followed: nobody reads its log, so the first run's reader annotations stay behind.
    assert ANNOTATION_HOLD_POD not in _annotations(runs, again)
    kubectl("taskrun", "rerun", "one", "--follow", "--name", "one-b")
    assert _annotations(runs, "one-b")[ANNOTATION_LOGS_FROM_STATUS] == "true"


# (spec) -> the annotations of a following `run`
ASKED = {
    "the base container": ({}, {ANNOTATION_HOLD_POD: "true", ANNOTATION_LOGS_FROM_STATUS: "true"}),
    "a renamed base": (
        {"baseContainerName": "main", "containerLogs": ["main"]},
        {ANNOTATION_HOLD_POD: "true", ANNOTATION_LOGS_FROM_STATUS: "true"},
    ),
    "another container": ({"containerLogs": ["sidecar"]}, {ANNOTATION_HOLD_POD: "true"}),
    "two containers": ({"containerLogs": ["base", "b"]}, {ANNOTATION_HOLD_POD: "true"}),
    "no log capture": ({"getLogs": False}, {ANNOTATION_HOLD_POD: "true"}),
}


@pytest.mark.parametrize("spec, want", ASKED.values(), ids=ASKED.keys())
def test_log_annotations(spec: dict[str, Any], want: dict[str, str]) -> None:
    assert log_annotations(spec) == want


@given(text=st.text(alphabet=st.characters(codec="utf-8")), data=st.data())
def test_unprinted_is_the_rest_of_the_log_after_any_printed_prefix(text: str, data: Any) -> None:
    log = text.replace("\r", "")
    raw = log.encode()
    cut = data.draw(st.integers(0, len(raw)))  # where a stream stopped, even inside a character
    printed = raw[:cut]
    lines, partial = printed.count(b"\n"), printed.rpartition(b"\n")[2]
    assert printed + unprinted(log, lines, partial) == raw


@given(log=st.binary(), data=st.data())
def test_unprinted_after_whole_lines_is_what_a_read_prints_of_invalid_bytes(
    log: bytes, data: Any
) -> None:
    # The controller keeps the log decoded with U+FFFD for invalid bytes.
    lines = data.draw(st.integers(0, log.count(b"\n")))
    rest = log.split(b"\n", lines)[lines] if lines else log
    tail = log.decode("utf-8", "replace")
    assert unprinted(tail, lines, b"") == rest.decode("utf-8", "replace").encode()


class _Out:
    """stdout as the plugin writes it: raw bytes to ``buffer``."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, text: str) -> None:
        self.buffer.write(text.encode())

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("cut", [0, 7, 9, len(SHORT) - 3, len(SHORT)])
def test_the_end_prints_the_rest_after_a_stream_that_stopped_anywhere(
    cluster: Any, controller: Any, runs: Any, cut: int
) -> None:
    """A follow that ended early (a dropped connection) printed ``SHORT[:cut]``: the end
    prints the rest from the status, with no log read and no ack."""
    runs.create("cut", scenario={"logs": SHORT}, annotations=log_annotations({}))
    runs.wait_finished("cut")
    taskrun = runs.get("cut")
    assert taskrun is not None and taskrun["status"]["logs"]["complete"] is True
    pod = taskrun["status"]["podName"]
    out = _Out()
    follower = Follower(Client(load(str(cluster.kubeconfig_path))), runs.namespace, out=out)  # type: ignore[arg-type]
    printed = SHORT[:cut].encode()
    follower.printed[pod] = (printed.count(b"\n"), printed.rpartition(b"\n")[2])
    follower.end_logs(taskrun)
    assert printed + out.buffer.getvalue() == SHORT.encode()
    assert _reads_and_acks(cluster, runs.namespace) == (0, 0)
