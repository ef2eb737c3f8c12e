"""examples/hello.yaml on the real node: true containers (busybox under runc), the native
sidecar's hand-over through a real kubelet's termination message."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import ROOT, NodeKubectl

HELLO = ROOT / "examples" / "hello.yaml"


def test_hello_example_as_written(node_kubectl: NodeKubectl, node_controller: Path) -> None:
    node_kubectl.run("apply", "-f", str(HELLO))
    status = node_kubectl.wait_finished("hello")
    assert status["phase"] == "Succeeded", (status, node_controller.read_text()[-3000:])
    assert status["exitCode"] == 0
    # status.result carries return.json's text as written (the trailing newline of echo).
    assert json.loads(status["result"]) == {"answer": 42}
    assert "hello from a TaskRun" in status["logs"]["tail"]


def test_hello_pod_has_real_container_statuses(
    node_kubectl: NodeKubectl, node_controller: Path
) -> None:
    """The same run with its pod kept: what the real kubelet reports for the base container
    and for the native sidecar (an init container with restartPolicy Always)."""
    manifest = (
        HELLO.read_text()
        .replace("name: hello", "name: hello-kept")
        .replace("onFinishAction: delete_pod", "onFinishAction: keep_pod")
    )
    node_kubectl.run("apply", "-f", "-", stdin=manifest)
    status = node_kubectl.wait_finished("hello-kept")
    assert status["phase"] == "Succeeded", status
    pod = node_kubectl.json("get", "pod", status["podName"])
    base = {c["name"]: c for c in pod["status"]["containerStatuses"]}["base"]
    assert base["state"]["terminated"]["exitCode"] == 0
    assert base["state"]["terminated"]["reason"] == "Completed"
    assert base["imageID"], base  # a real image digest from containerd
    assert base["containerID"].startswith("containerd://")
    (sidecar,) = pod["status"]["initContainerStatuses"]
    message = sidecar["state"]["terminated"]["message"]
    # inline:<size>:<sha256>:<bytes> (the controller checks size and hash)
    kind, size, digest, body = message.split(":", 3)
    assert kind == "inline", sidecar
    assert int(size) == len(body.encode()) and len(digest) == 64, sidecar
    assert json.loads(body) == {"answer": 42}
    logs = node_kubectl.run("logs", status["podName"], "-c", "base")
    assert logs == "hello from a TaskRun\n"


def test_hello_in_exec_result_mode(
    node_kubectl: NodeKubectl, node_controller_factory: Callable[..., Path]
) -> None:
    """--xcom-mode=exec (KPO's sidecar, for clusters before 1.29): the controller reads
    return.json and stops the sidecar through exec, API server -> kubelet -> containerd."""
    log = node_controller_factory("--xcom-mode", "exec")
    node_kubectl.run("apply", "-f", str(HELLO))
    status = node_kubectl.wait_finished("hello")
    assert status["phase"] == "Succeeded", (status, log.read_text()[-3000:])
    assert json.loads(status["result"]) == {"answer": 42}
    assert "result sidecar mode: exec" in log.read_text()
