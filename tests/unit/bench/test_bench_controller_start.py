"""bench.cluster's start of the controller on an audited API server (bench.real, bench.kpo_real):
it yields only once the controller's own watches of TaskRuns and pods are in the audit log,
and a controller that exits or never watches fails the start with the end of its log.

A shell script stands in for the controller's interpreter (BENCH_CONTROLLER_PYTHON), and the
audit log's reader is a function returning the records the test decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bench.cluster import running_controller_audited
from testcluster.audit import AuditRecord, record

USER = "system:serviceaccount:taskrun-system:taskrun-controller"


def rec(resource: str, verb: str = "watch", user: str = USER, started: float = 0.0) -> AuditRecord:
    """A request's audit event as the log's reader reads it; made when read, so after the
    start unless `started` says otherwise."""
    stamp = datetime.fromtimestamp(started or time.time(), timezone.utc).isoformat()
    event = {
        "verb": verb,
        "objectRef": {"resource": resource, "apiVersion": "v1"},
        "user": {"username": user},
        "userAgent": "kopf/1.45",
        "requestReceivedTimestamp": stamp,
    }
    return record(event)


@pytest.fixture
def fake_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Install a stand-in controller running `body` after printing its arguments."""

    def install(body: str) -> Path:
        script = tmp_path / "fake-python"
        script.write_text(f'#!/bin/sh\necho "args: $*"\n{body}\n')
        script.chmod(0o755)
        monkeypatch.setenv("BENCH_CONTROLLER_PYTHON", str(script))
        return tmp_path / "controller.log"

    return install


def test_yields_once_the_user_watches_taskruns_and_pods_then_stops_it(
    fake_controller: Callable[[str], Path], tmp_path: Path
) -> None:
    log = fake_controller("exec sleep 30")
    # What the audit log shows, poll after poll: nothing, a list (kopf's first call, before
    # its watch), the TaskRun watch, then the pod watch.
    polls: list[list[tuple[str, str]]] = [
        [],
        [("taskruns", "list")],
        [("taskruns", "watch")],
        [("pods", "watch")],
    ]
    calls = 0

    def records() -> list[AuditRecord]:
        nonlocal calls
        calls += 1
        return [rec(resource, verb) for resource, verb in polls[min(calls, len(polls)) - 1]]

    kubeconfig = tmp_path / "controller.kubeconfig"
    with running_controller_audited(kubeconfig, USER, records, log, timeout=30) as proc:
        assert calls == len(polls), f"yielded after {calls} polls, before both watches"
        assert proc.poll() is None
    assert proc.poll() is not None, "the controller was left running"
    args = log.read_text()
    assert "-m controller --all-namespaces --metrics-port 0 --health-port 0" in args
    assert f"--kubeconfig {kubeconfig}" in args


@pytest.mark.parametrize(
    "pods",
    [
        pytest.param({"verb": "list"}, id="pods-listed-only"),
        pytest.param({"user": "admin"}, id="another-users-watch"),
        pytest.param({"started": 1.0}, id="a-watch-before-the-start"),
    ],
)
def test_what_is_not_the_controllers_watch_since_its_start_does_not_count(
    fake_controller: Callable[[str], Path], tmp_path: Path, pods: dict[str, Any]
) -> None:
    log = fake_controller("exec sleep 30")

    def records() -> list[AuditRecord]:
        return [rec("taskruns"), rec("pods", **pods)]

    with (
        pytest.raises(RuntimeError, match=r"did not watch pods in 0\.3 s") as err,
        running_controller_audited(tmp_path / "kc", USER, records, log, timeout=0.3),
    ):
        pytest.fail("yielded without the controller's pod watch")
    assert "args: -m controller" in str(err.value), "the log's end is not in the error"


def test_a_controller_that_exits_fails_the_start_with_its_log(
    fake_controller: Callable[[str], Path], tmp_path: Path
) -> None:
    log = fake_controller('echo "bad flag --kubeconfig" >&2\nexit 3')
    with (
        pytest.raises(RuntimeError, match="exited with 3") as err,
        running_controller_audited(tmp_path / "kc", USER, lambda: [], log, timeout=30),
    ):
        pytest.fail("yielded for a controller that exited")
    assert "bad flag --kubeconfig" in str(err.value)
