"""Exec mode (clusters before 1.29): KPO's sleeping sidecar, read and stopped over pods/exec.

devcluster (and the node agent behind the real API server) serves pods/exec over WebSocket
(channel.k8s.io) and runs the commands in the simulated container (devcluster/shell.py),
so this is the controller's own exec client against an API server, end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controller import k8s
from controller.core import results
from controller.handlers import Controller
from testcluster import Cluster
from tests.integration.conftest import Runs, poll, run_controller

RESULT = "/airflow/xcom/return.json"
SIDECAR = "airflow-xcom-sidecar"


@pytest.fixture(scope="module")
def exec_controller(cluster: Cluster) -> Iterator[Controller]:
    # The extra grant docs/operations.md tells exec-mode users to add in their overlay.
    rule = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]}
    cluster.grant_controller("taskrun-controller-exec", [rule])
    with run_controller(cluster, xcom_mode="exec") as running:
        yield running


def _execs(runs: Runs) -> list[str]:
    return [
        r.code for r in runs.cluster.requests.filter(namespace=runs.namespace, subresource="exec")
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [('{"answer": 42}', '{"answer": 42}'), ("", None), ("[1, 2, 3]\n", "[1, 2, 3]\n")],
    ids=["object", "no-file", "list"],
)
def test_the_result_is_read_over_exec(
    exec_controller: Controller, runs: Runs, content: str, expected: str | None
):
    files = {RESULT: content} if content else {}
    runs.create("xe", scenario={"files": files, "runSeconds": 0.2}, doXcomPush=True)
    status = runs.wait_finished("xe")
    assert status["phase"] == "Succeeded", status.get("message")
    assert status.get("result") == expected
    # one exec, answered over WebSocket (101), reads the result; the pod is then deleted,
    # sidecar and all, so nothing needs stopping
    assert _execs(runs) == [101]
    poll(lambda: runs.pod("xe-1") is None, what="the pod to be deleted")


def test_a_kept_pod_ends_with_its_sidecar_stopped(exec_controller: Controller, runs: Runs):
    runs.create(
        "kept",
        scenario={"files": {RESULT: "7"}, "runSeconds": 0.2},
        doXcomPush=True,
        onFinishAction="keep_pod",
    )
    assert runs.wait_finished("kept")["result"] == "7"

    def sidecar_exit() -> object:
        pod = runs.pod("kept-1") or {}
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status["name"] == SIDECAR and "terminated" in status["state"]:
                return status["state"]["terminated"]
        return None

    terminated = poll(sidecar_exit, what="the sidecar to exit on SIGINT")
    assert terminated["exitCode"] == 0
    poll(
        lambda: (runs.pod("kept-1") or {}).get("status", {}).get("phase") == "Succeeded",
        what="the kept pod to end Succeeded",
    )
    # read the result, then `kill -s SIGINT 1` in the sidecar
    assert _execs(runs) == [101, 101]


def test_an_event_during_the_sidecar_stop_sends_no_second_kill(
    exec_controller: Controller, runs: Runs, monkeypatch: pytest.MonkeyPatch
):
    # The kill returns before the pod shows the sidecar's exit (the node writes pods/status,
    # the watch brings it later); a pod event in that window reconciles the run again with
    # the sidecar still shown running. Played here deterministically: an event right after
    # the kill. The sidecar has its SIGINT: it must not be sent another (on the real API
    # server, 1 run in 2 sent one, refused 400 once the sidecar had exited).
    exec_once = k8s.Client.exec

    async def exec_then_event(self: k8s.Client, *args: Any, **kwargs: Any) -> bytes:
        out = await exec_once(self, *args, **kwargs)
        if args[3] == results.EXEC_KILL_COMMAND:
            exec_controller.trigger((runs.namespace, "racy"))
        return out

    monkeypatch.setattr(k8s.Client, "exec", exec_then_event)
    runs.create(
        "racy",
        scenario={"files": {RESULT: "7"}, "runSeconds": 0.2},
        doXcomPush=True,
        onFinishAction="keep_pod",
    )
    assert runs.wait_finished("racy")["result"] == "7"
    poll(
        lambda: (runs.pod("racy-1") or {}).get("status", {}).get("phase") == "Succeeded",
        what="the kept pod to end Succeeded",
    )
    assert _execs(runs) == [101, 101]


def test_invalid_json_read_over_exec_fails_the_run(exec_controller: Controller, runs: Runs):
    runs.create("bad", scenario={"files": {RESULT: "{not json"}}, doXcomPush=True)
    status = runs.wait_finished("bad")
    assert (status["phase"], status["reason"]) == ("Failed", "ResultInvalid")
