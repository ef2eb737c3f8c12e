"""The real node (realcluster/realnode.py: containerd, runc, CNI, kubelet 1.37) joined to the
real control plane, and the TaskRun controller run against it with the local busybox as
its result sidecar. Every test here is marked ``realnode`` (`make test-node`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from realcluster.pytest_plugin import RealCluster
from realcluster.realnode import BUSYBOX_IMAGE, RealNode

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KUBECTL = "kubectl"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realnode)
            item.add_marker(pytest.mark.realcluster)


@pytest.fixture(scope="session")
def realnode(realcluster: RealCluster, realcluster_realnode: RealNode) -> RealNode:
    """The session's real node, with the TaskRun CRD installed."""
    kubectl = [KUBECTL, "--kubeconfig", str(realcluster.kubeconfig)]
    proc = subprocess.run([*kubectl, "apply", "-f", str(ROOT / "crds")], capture_output=True)
    refusal = proc.stderr.decode()
    if proc.returncode != 0 and "estimated rule cost exceeds budget" in refusal:
        # The known refusal of docs/testing.md (CEL cost), fixed by bounding the CRD's lists
        # on another branch: once merged this skip never fires.
        pytest.skip("real node skipped: kube-apiserver refuses crds/ (CEL rule cost budget)")
    assert proc.returncode == 0, f"kubectl apply -f crds/ refused: {refusal}"
    # A TaskRun applied before the CRD is Established meets "no matches for kind TaskRun"
    # (and `kubectl wait` fails at once on a CRD with no conditions yet).
    crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/taskruns.taskrun.dev"
    deadline = time.monotonic() + 60
    while not any(
        c["type"] == "Established" and c["status"] == "True"
        for c in (realcluster.api.call("GET", crd).get("status") or {}).get("conditions") or []
    ):
        assert time.monotonic() < deadline, "the TaskRun CRD was not Established in 60 s"
        time.sleep(0.1)
    return realcluster_realnode


def file_kubeconfig(realcluster: RealCluster, path: Path) -> Path:
    """The admin kubeconfig with file paths instead of embedded *-data (main's controller
    reads embedded data wrongly; fixed on another branch)."""
    pki = realcluster.plane.workdir / "pki"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": realcluster.server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "u", "user": {
            "client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def taskrun(name: str, script: str, **spec: Any) -> str:
    """A TaskRun running ``sh -c script`` in the local busybox, its pod kept."""
    return json.dumps(
        {
            "apiVersion": "taskrun.dev/v1alpha1",
            "kind": "TaskRun",
            "metadata": {"name": name},
            "spec": {
                "image": "docker.io/taskrun/busybox:local",
                "cmds": ["sh", "-c"],
                "arguments": [script],
                "onFinishAction": "keep_pod",
                **spec,
            },
        }
    )


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
        """The TaskRun's status once its phase is Succeeded or Failed."""
        return self.wait_finished_as(name, "Succeeded", "Failed", timeout=timeout)

    def wait_finished_as(self, name: str, *phases: str, timeout: float = 120) -> dict[str, Any]:
        """The TaskRun's status once its phase is one of ``phases``."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.json("get", "taskrun", name).get("status") or {}
            if status.get("phase") in phases:
                return dict(status)
            assert time.monotonic() < deadline, f"TaskRun {name} not finished: {status}"
            time.sleep(0.5)


@pytest.fixture
def node_kubectl(realcluster: RealCluster, realcluster_ns: str) -> NodeKubectl:
    return NodeKubectl(realcluster.kubeconfig, realcluster_ns)


@pytest.fixture
def node_controller_factory(
    realnode: RealNode, realcluster: RealCluster, realcluster_ns: str, tmp_path: Path
) -> Iterator[Callable[..., Path]]:
    """Starts `python -m controller` watching the test's namespace with extra flags;
    returns its log's path. Stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> Path:
        log = tmp_path / f"controller-{len(procs)}.log"
        kubeconfig = file_kubeconfig(realcluster, tmp_path / "controller.kubeconfig")
        argv = [sys.executable, "-m", "controller", "--namespace", realcluster_ns,
                "--xcom-sidecar-image", BUSYBOX_IMAGE, "--metrics-port", "0",
                "--health-port", "0", *extra]  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        with log.open("ab") as out:
            procs.append(
                subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
            )
        return log

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def node_controller(node_controller_factory: Callable[..., Path]) -> Path:
    """The controller with its defaults (native result sidecar); its log's path."""
    return node_controller_factory()
