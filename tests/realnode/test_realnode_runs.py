"""Exit codes, a real OOM kill and a result over the kubelet's 4 KiB termination-message cap,
on the real node: what runc, the kernel and the kubelet report, not a scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import NodeKubectl, taskrun


def base_state(kubectl: NodeKubectl, pod: str) -> dict[str, Any]:
    statuses = kubectl.json("get", "pod", pod)["status"]["containerStatuses"]
    state: dict[str, Any] = {c["name"]: c for c in statuses}["base"]["state"]["terminated"]
    return state


def test_exit_code_is_the_containers(node_kubectl: NodeKubectl, node_controller: Path) -> None:
    node_kubectl.run("apply", "-f", "-", stdin=taskrun("exit3", "echo bye; exit 3"))
    status = node_kubectl.wait_finished("exit3")
    assert (status["phase"], status["exitCode"]) == ("Failed", 3), status
    state = base_state(node_kubectl, status["podName"])
    assert (state["exitCode"], state["reason"]) == (3, "Error")


def test_memory_limit_ends_in_a_real_oom_kill(
    node_kubectl: NodeKubectl, node_controller: Path
) -> None:
    # tail -c keeps its last 150 MB in memory: far over the 32 MiB limit (cgroup v1
    # memory.limit_in_bytes), so the kernel's OOM killer ends it.
    script = "head -c 200000000 /dev/zero | tail -c 150000000 > /dev/null"
    limits = {"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}}
    node_kubectl.run("apply", "-f", "-", stdin=taskrun("oom", script, containerResources=limits))
    status = node_kubectl.wait_finished("oom")
    state = base_state(node_kubectl, status["podName"])
    assert (state["reason"], state["exitCode"]) == ("OOMKilled", 137), state
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "OOMKilled", 137)
    assert "container base was killed for running out of memory" in status["message"], status


def test_oom_kill_of_a_child_follows_the_kubelets_exit_code(
    node_kubectl: NodeKubectl, node_controller: Path
) -> None:
    """cgroup v1 has no memory.oom.group: the kernel kills the biggest process (tail), and
    the shell goes on, or is killed too by a second OOM kill while tail's memory is not yet
    released (seen once in three runs, at load 12 on 2 cores). The kubelet says
    ``OOMKilled`` either way (containerd saw an OOM event in the container's cgroup), with
    the shell's exit code: 0, pod Succeeded, or 137, pod Failed. The TaskRun follows the
    pod, as KPO would."""
    # The shell's own "Killed" goes to its stderr and "survived" to its stdout: the kubelet
    # reads the two pipes separately, so their order in the log is not the order written
    # (CI saw "survived" first once). One pipe for both keeps the order.
    script = "exec 2>&1; head -c 200000000 /dev/zero | tail -c 150000000 > /dev/null; echo survived"
    limits = {"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}}
    manifest = taskrun("oomchild", script, containerResources=limits)
    node_kubectl.run("apply", "-f", "-", stdin=manifest)
    status = node_kubectl.wait_finished("oomchild")
    pod = node_kubectl.json("get", "pod", status["podName"])
    state = base_state(node_kubectl, status["podName"])
    assert state["reason"] == "OOMKilled", state
    if state["exitCode"] == 0:
        assert pod["status"]["phase"] == "Succeeded"
        assert (status["phase"], status["exitCode"]) == ("Succeeded", 0), status
        # The shell reports its child's SIGKILL, then goes on.
        log = node_kubectl.run("logs", status["podName"], "-c", "base")
        assert log == "Killed\nsurvived\n"
    else:
        assert state["exitCode"] == 137, state
        assert pod["status"]["phase"] == "Failed"
        assert (status["phase"], status["reason"], status["exitCode"]) == (
            "Failed",
            "OOMKilled",
            137,
        ), status


def test_result_over_4_kib_comes_through_the_log(
    node_kubectl: NodeKubectl, node_controller: Path
) -> None:
    """4097 bytes: one over what the kubelet keeps of a termination message, so the sidecar
    hands it over through its log (``log:<size>:<sha256>`` in the message)."""
    script = (
        "mkdir -p /airflow/xcom; "
        "printf '\"%s\"' \"$(head -c 4095 /dev/zero | tr '\\0' a)\" > /airflow/xcom/return.json"
    )
    node_kubectl.run("apply", "-f", "-", stdin=taskrun("big", script, doXcomPush=True))
    status = node_kubectl.wait_finished("big")
    assert status["phase"] == "Succeeded", status
    assert json.loads(status["result"]) == "a" * 4095
    assert status["resultSize"] == 4097
    pod = node_kubectl.json("get", "pod", status["podName"])
    (sidecar,) = pod["status"]["initContainerStatuses"]
    assert sidecar["state"]["terminated"]["message"].startswith("log:4097:"), sidecar


def test_skip_on_exit_code(node_kubectl: NodeKubectl, node_controller: Path) -> None:
    node_kubectl.run("apply", "-f", "-", stdin=taskrun("skip", "exit 5", skipOnExitCode=[5]))
    status = node_kubectl.wait_finished_as("skip", "Skipped", "Succeeded", "Failed")
    assert (status["phase"], status["exitCode"]) == ("Skipped", 5), status


def test_retries_make_one_pod_per_attempt(node_kubectl: NodeKubectl, node_controller: Path) -> None:
    backoff = {"initialSeconds": 1, "maxSeconds": 1}
    manifest = taskrun("retry", "exit 4", retries=1, retryBackoff=backoff)
    node_kubectl.run("apply", "-f", "-", stdin=manifest)
    status = node_kubectl.wait_finished_as("retry", "Failed", timeout=90)
    assert (status["attempts"], status["exitCode"]) == (2, 4), status
    pods = node_kubectl.json("get", "pods", "-l", "taskrun.dev/name=retry")["items"]
    attempts = sorted(p["metadata"]["labels"]["taskrun.dev/attempt"] for p in pods)
    assert attempts == ["1", "2"]
    for pod in pods:
        (base,) = pod["status"]["containerStatuses"]
        assert base["state"]["terminated"]["exitCode"] == 4
