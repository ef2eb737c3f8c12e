"""Results of every size class through a real kubelet's termination message (4096-byte cap)
and the sidecar's log, and the controller's refusals (invalid JSON, over the cap)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import NodeKubectl, taskrun

# A JSON string of `size` bytes: the quotes plus size-2 letters.
WRITE = (
    "mkdir -p /airflow/xcom; n={n}; [ $n -ge 2 ] && printf '\"%s\"' "
    "\"$(head -c $((n-2)) /dev/zero | tr '\\0' a)\" > /airflow/xcom/return.json; true"
)


@pytest.mark.parametrize(
    ("size", "handover"),
    [(0, "none"), (10, "inline:"), (4000, "inline:"), (4096, "log:4096:"), (500 * 1024, "log:")],
)
def test_result_sizes(
    node_kubectl: NodeKubectl, node_controller: Path, size: int, handover: str
) -> None:
    name = f"size-{size}"
    script = WRITE.format(n=size)
    node_kubectl.run("apply", "-f", "-", stdin=taskrun(name, script, doXcomPush=True))
    status = node_kubectl.wait_finished(name)
    assert status["phase"] == "Succeeded", status
    pod = node_kubectl.json("get", "pod", status["podName"])
    (sidecar,) = pod["status"]["initContainerStatuses"]
    assert sidecar["state"]["terminated"]["message"].startswith(handover), sidecar
    if size == 0:
        assert status.get("result") is None, status
    else:
        assert json.loads(status["result"]) == "a" * (size - 2)
        assert status["resultSize"] == size


def test_invalid_json_and_over_the_cap_are_refused(
    node_kubectl: NodeKubectl, node_controller_factory: Callable[..., Path]
) -> None:
    node_controller_factory("--max-result-bytes", "1000")
    bad = "mkdir -p /airflow/xcom; echo '{not json' > /airflow/xcom/return.json"
    node_kubectl.run("apply", "-f", "-", stdin=taskrun("bad", bad, doXcomPush=True))
    big = WRITE.format(n=2000)
    node_kubectl.run("apply", "-f", "-", stdin=taskrun("big", big, doXcomPush=True))
    bad_status = node_kubectl.wait_finished("bad")
    big_status = node_kubectl.wait_finished("big")
    assert (bad_status["phase"], bad_status["reason"]) == ("Failed", "ResultInvalid"), bad_status
    assert (big_status["phase"], big_status["reason"]) == ("Failed", "ResultTooLarge"), big_status


def test_four_containers_share_the_12_kib_budget(
    node_kubectl: NodeKubectl, node_controller: Path
) -> None:
    """Two init containers + base + sidecar: the kubelet keeps 12 KiB / 4 = 3 KiB of each
    termination message, so a 3500-byte result (inline with fewer containers) must arrive
    whole through the log, as the pod builder's smaller inline budget makes it."""
    inits = [
        {"name": f"init{i}", "image": "docker.io/taskrun/busybox:local", "command": ["true"]}
        for i in (1, 2)
    ]
    manifest = taskrun("four", WRITE.format(n=3500), doXcomPush=True, initContainers=inits)
    node_kubectl.run("apply", "-f", "-", stdin=manifest)
    status = node_kubectl.wait_finished("four")
    assert status["phase"] == "Succeeded", status
    assert json.loads(status["result"]) == "a" * 3498
    pod = node_kubectl.json("get", "pod", status["podName"])
    sidecar = {c["name"]: c for c in pod["status"]["initContainerStatuses"]}["airflow-xcom-sidecar"]
    assert sidecar["state"]["terminated"]["message"].startswith("log:3500:"), sidecar
