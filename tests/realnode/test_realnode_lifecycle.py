"""What only a real kubelet enforces: activeDeadlineSeconds, and graceful deletion that
delivers SIGTERM to the base container on cancel."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

from conftest import NodeKubectl, taskrun


def test_active_deadline_is_enforced(node_kubectl: NodeKubectl, node_controller: Path) -> None:
    manifest = taskrun("deadline", "echo started; sleep 300", activeDeadlineSeconds=3)
    node_kubectl.run("apply", "-f", "-", stdin=manifest)
    status = node_kubectl.wait_finished("deadline", timeout=60)
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded"), status


def test_cancel_sends_sigterm_to_the_base_container(
    node_kubectl: NodeKubectl, node_controller: Path
) -> None:
    """The controller deletes the pod with its grace period; the kubelet sends SIGTERM to the
    base container, whose trap's last words reach a `kubectl logs -f` started before."""
    script = "trap 'echo got TERM; exit 7' TERM; echo started; while :; do sleep 1 & wait $!; done"
    node_kubectl.run("apply", "-f", "-", stdin=taskrun("cancel", script))
    deadline = time.monotonic() + 60
    while True:
        status = node_kubectl.json("get", "taskrun", "cancel").get("status") or {}
        pod = status.get("podName")
        if status.get("phase") == "Running" and pod:
            with contextlib.suppress(AssertionError):  # ContainerCreating: no log yet
                if "started" in node_kubectl.run("logs", pod, "-c", "base"):
                    break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    follow = subprocess.Popen(
        [*node_kubectl.base, "logs", "-f", pod, "-c", "base"], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)  # the stream must be open before the signal; no event says it is
        patch = json.dumps({"spec": {"cancel": True}})
        node_kubectl.run("patch", "taskrun", "cancel", "--type=merge", "-p", patch)
        out, _ = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert out == "started\ngot TERM\n"
    status = node_kubectl.wait_finished_as("cancel", "Cancelled")
    assert status["reason"] == "Cancelled"
