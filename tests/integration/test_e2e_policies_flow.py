"""Cancel, retries, ttl, finish actions, pods deleted under us, the logs hand-over, 422."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.handlers import Controller
from tests.integration.conftest import Runs, poll, stays

KUBECTL = Path(sys.executable).parent / "kubectl"
LONG = {"runSeconds": 5, "logs": "working\n"}


def running(runs: Runs, name: str) -> dict:
    return runs.wait_status(name, lambda s: s.get("phase") == "Running")


def test_cancel_stops_the_pod_and_ends_cancelled(controller: Controller, runs: Runs):
    runs.create("stop-me", scenario=LONG, terminationGracePeriod=1)
    running(runs, "stop-me")
    runs.patch_spec("stop-me", {"cancel": True})
    status = runs.wait_finished("stop-me")
    assert (status["phase"], status["reason"]) == ("Cancelled", "Cancelled")
    assert next(c for c in status["conditions"] if c["type"] == "Succeeded")["status"] == "False"
    poll(lambda: not runs.pods(), what="the cancelled pod to go")
    deletes = runs.cluster.requests.filter(
        namespace=runs.namespace, verb="delete", resource="pods", user_agent="taskrun-controller"
    )
    assert len(deletes) == 1
    assert "gracePeriodSeconds" not in deletes[0].query or "1" in deletes[0].query


def test_retries_start_one_new_pod_per_attempt_and_keep_history(controller: Controller, runs: Runs):
    backoff = {"initialSeconds": 0, "maxSeconds": 0}
    runs.create("flaky", scenario={"exitCode": 7}, retries=2, retryBackoff=backoff)
    status = runs.wait_finished("flaky")
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "ExitCode", 7)
    assert status["attempts"] == 3
    assert [h["attempt"] for h in status["history"]] == [1, 2, 3]
    assert [h["podName"] for h in status["history"]] == ["flaky-1", "flaky-2", "flaky-3"]
    assert all(h["exitCode"] == 7 for h in status["history"])
    assert runs.pod_creates() == 3


def test_ttl_deletes_the_finished_taskrun(controller: Controller, runs: Runs):
    runs.create("short-lived", scenario={"exitCode": 0}, ttlSecondsAfterFinished=1)
    runs.wait_finished("short-lived")
    poll(lambda: runs.get("short-lived") is None, timeout=5, what="the TaskRun to be deleted")


@pytest.mark.parametrize(
    ("action", "exit_code", "kept"),
    [("keep_pod", 0, True), ("delete_succeeded_pod", 1, True), ("delete_succeeded_pod", 0, False)],
)
def test_finish_actions(controller: Controller, runs: Runs, action, exit_code, kept):
    runs.create("fin", scenario={"exitCode": exit_code}, onFinishAction=action)
    status = runs.wait_finished("fin")
    if kept:
        stays(lambda: runs.pod(status["podName"]) is not None, what="the pod being there")
        deletes = runs.cluster.requests.count(
            namespace=runs.namespace, verb="delete", resource="pods"
        )
        assert deletes == 0
    else:
        poll(lambda: runs.pod(status["podName"]) is None, what="the pod to go")


def test_a_pod_deleted_by_someone_else_ends_pod_deleted(controller: Controller, runs: Runs):
    runs.create("orphan", scenario=LONG)
    status = running(runs, "orphan")
    runs.cluster.delete("pods", runs.namespace, status["podName"], grace_period=0)
    status = runs.wait_finished("orphan")
    assert (status["phase"], status["reason"]) == ("Failed", "PodDeleted")


def test_the_log_tail_outlives_the_pod(controller: Controller, runs: Runs, tmp_path):
    logs = "".join(f"line {i}\n" for i in range(150))
    runs.create("chatty", scenario={"exitCode": 1, "logs": logs})
    status = runs.wait_finished("chatty")
    poll(lambda: not runs.pods(), what="the pod to go")
    tail = runs.status("chatty")["logs"]
    assert tail["tail"] == "".join(f"line {i}\n" for i in range(50, 150))
    assert tail["truncated"] is True
    assert tail["command"] == f"kubectl logs -n {runs.namespace} chatty-1 -c base"
    assert status["reason"] == "ExitCode"

    described = subprocess.run(
        [
            str(KUBECTL),
            "--kubeconfig",
            str(runs.cluster.kubeconfig_path),
            "--cache-dir",
            str(tmp_path / "kube-cache"),
            "describe",
            "taskrun",
            "chatty",
            "-n",
            runs.namespace,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert described.returncode == 0, described.stderr
    assert "ExitCode" in described.stdout
    assert "line 149" in described.stdout


def test_a_held_pod_stays_until_the_logs_are_acked(controller: Controller, runs: Runs):
    hold = {"taskrun.dev/hold-pod-until-ack": "true"}
    runs.create("held", scenario={"exitCode": 0}, annotations=hold)
    status = runs.wait_finished("held")
    stays(lambda: runs.pod(status["podName"]) is not None, what="the held pod being there")
    runs.annotate("held", {"taskrun.dev/logs-acked": "true"})
    poll(lambda: runs.pod(status["podName"]) is None, what="the acked pod to go")


def test_a_pod_the_api_server_refuses_ends_invalid_spec(controller: Controller, runs: Runs):
    # A second template container without an image: only the API server says no.
    template = {"spec": {"containers": [{"name": "base"}, {"name": "helper"}]}}
    runs.create("refused", podTemplate=template)
    status = runs.wait_finished("refused")
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec")
    assert "spec.containers[1].image" in status["message"]
    creates = runs.cluster.requests.count(
        namespace=runs.namespace, verb="create", resource="pods", subresource=""
    )
    assert creates == 1
    assert runs.pods() == []
    # no retry storm: one create, one status patch, one event, and quiet afterwards
    stays(
        lambda: (
            len(runs.cluster.requests.filter(namespace=runs.namespace, user_agent="taskrun")) <= 3
        ),
        what="the request count staying bounded",
    )


def test_a_pod_name_taken_by_another_taskrun_is_a_conflict(controller: Controller, runs: Runs):
    other = runs.create("other", scenario=LONG)
    squatter = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "clash-1",
            "ownerReferences": [
                {
                    "apiVersion": "taskrun.dev/v1alpha1",
                    "kind": "TaskRun",
                    "name": "other",
                    "uid": other["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "base", "image": "busybox"}]},
    }
    runs.cluster.create("pods", runs.namespace, squatter)
    runs.create("clash", scenario={"exitCode": 0}, retries=2)
    status = runs.wait_finished("clash")
    assert (status["phase"], status["reason"]) == ("Failed", "PodNameConflict")
    assert "clash-1" in status["message"]
    # not retried, and the other TaskRun's pod is left alone
    assert runs.pod("clash-1") is not None
    assert "history" not in status
    creates = runs.cluster.requests.filter(
        namespace=runs.namespace, verb="create", resource="pods", subresource=""
    )
    # other-1 created once, clash-1 tried once
    codes = sorted(c.code for c in creates if c.user_agent.startswith("taskrun-controller"))
    assert codes == [201, 409]
