"""The real node (realcluster/realnode.py: containerd, runc, CNI, kubelet 1.37) joined to the
real control plane, and the TaskRun controller run against it with the local busybox as
its result sidecar. Every test here is marked ``realnode`` (`make test-node`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from realcluster.pytest_plugin import RealCluster
from realcluster.realnode import BUSYBOX_IMAGE, RealNode, why_no_node

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = "kubectl"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realnode)
            item.add_marker(pytest.mark.realcluster)


@pytest.fixture(scope="session")
def realnode(realcluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    reason = why_no_node()
    if reason:
        pytest.skip(f"real node skipped: {reason}")
    subprocess.run(
        [KUBECTL, "--kubeconfig", str(realcluster.kubeconfig), "apply", "-f", str(ROOT / "crds")],
        check=True, capture_output=True,
    )  # fmt: skip
    with RealNode(realcluster.server, realcluster.plane.pki) as node:
        yield node


class NodeKubectl:
    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.base = [KUBECTL, "--kubeconfig", str(kubeconfig), "-n", namespace]

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        proc = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr}"
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))

    def wait_finished(self, name: str, timeout: float = 120) -> dict[str, Any]:
        """The TaskRun's status once its phase is Succeeded or Failed (the watch of
        kubectl wait is the event; a short poll keeps this helper simple)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.json("get", "taskrun", name).get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                return status
            assert time.monotonic() < deadline, f"TaskRun {name} not finished: {status}"
            time.sleep(0.5)


@pytest.fixture
def node_kubectl(realcluster: RealCluster, realcluster_ns: str) -> NodeKubectl:
    return NodeKubectl(realcluster.kubeconfig, realcluster_ns)


def start_controller(kubeconfig: Path, namespace: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "controller", "--namespace", namespace,
             "--xcom-sidecar-image", BUSYBOX_IMAGE, "--metrics-port", "0", "--health-port", "0",
             *extra],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


@pytest.fixture
def node_controller(
    realnode: RealNode, realcluster: RealCluster, realcluster_ns: str, tmp_path: Path
) -> Iterator[Path]:
    """The controller watching the test's namespace; yields its log path."""
    log = tmp_path / "controller.log"
    proc = start_controller(realcluster.kubeconfig, realcluster_ns, log)
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
