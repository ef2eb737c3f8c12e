"""pytest fixtures for the real control plane: ``pytest_plugins = ["realcluster.pytest_plugin"]``.

``realcluster`` (session) starts etcd, kube-apiserver, kube-controller-manager and
kube-scheduler once; ``realcluster_ns`` gives a test a fresh namespace. Both skip, with one
line, when the binaries are not built. Its node is either ``realcluster_node`` (the node
agent) or ``realcluster_realnode`` (kubelet, containerd, runc), one per session."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster.node import NODE_NAME, AgentProcess
from realcluster.build import BIN_DIR, missing_binaries
from realcluster.client import Api, ApiError, JsonDict
from realcluster.controlplane import ControlPlane
from realcluster.realnode import RealNode, why_no_node

_counter = itertools.count(1)


def unavailable() -> str | None:
    """Why the real control plane cannot run here, or None."""
    missing = missing_binaries()
    if not missing:
        return None
    if shutil.which("go") is None:
        return "real control plane skipped: go is not on PATH and realcluster/bin is empty"
    return (
        f"real control plane skipped: {BIN_DIR} lacks {', '.join(missing)}; "
        "run `make test-real` or `python -m realcluster build`"
    )


class RealCluster:
    """What a test needs of the running control plane."""

    def __init__(self, plane: ControlPlane, scratch: Path) -> None:
        self.plane = plane
        self.kubeconfig: Path = plane.kubeconfig
        self.server: str = plane.server
        self.api: Api = plane.admin_api()
        self._scratch = scratch
        # "agent" or "real" once a node has joined: never both, or kube-scheduler would
        # spread a suite's pods over two kinds of node.
        self.node_kind: str | None = None

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        self.api.call(
            "POST",
            "/api/v1/namespaces",
            {"metadata": {"name": name, "labels": labels or {}}},
        )
        return name

    def delete_namespace(self, name: str) -> None:
        """Starts the deletion; the namespace controller finishes it in the background."""
        try:
            self.api.call("DELETE", f"/api/v1/namespaces/{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    def service_account_kubeconfig(
        self, namespace: str, name: str, expiration_seconds: int = 3600
    ) -> Path:
        """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` (created if
        absent) with a token from the TokenRequest API, as a pod's projected token would."""
        base = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        try:
            self.api.call("POST", base, {"metadata": {"name": name}})
        except ApiError as exc:
            if exc.status != 409:
                raise
        request: JsonDict = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        token = self.api.call("POST", f"{base}/{name}/token", request)["status"]["token"]
        path = self._scratch / f"sa-{namespace}-{name}.kubeconfig"
        return self.plane.write_kubeconfig(path, {"token": token}, name=f"{namespace}-{name}")


@pytest.fixture(scope="session")
def realcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    """One real control plane for the session; its logs stay in pytest's temp dir."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("realcluster")
    with ControlPlane(workdir=workdir) as plane:
        yield RealCluster(plane, tmp_path_factory.mktemp("realcluster-kubeconfigs"))
    # etcd preallocates a 64 MB WAL segment; pytest keeps three sessions' temp dirs.
    shutil.rmtree(workdir / "etcd", ignore_errors=True)


@pytest.fixture
def realcluster_ns(realcluster: RealCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test; its deletion is started afterwards, not awaited."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"r{os.getpid() % 1000}-{next(_counter)}-{base}"[:63].rstrip("-")
    realcluster.create_namespace(name)
    try:
        yield name
    finally:
        realcluster.delete_namespace(name)


@pytest.fixture(scope="session")
def realcluster_node(realcluster: RealCluster) -> Iterator[AgentProcess]:
    """The node agent (devcluster's kubelet, `python -m devcluster.node`) registered as node
    NODE_NAME of the session's control plane: kube-scheduler binds pods to it, it plays their
    scenarios and serves their logs and exec. Its log: the control plane's logs directory."""
    if realcluster.node_kind == "real":
        pytest.skip("the real node runs in this session: pass --node=real to run this on it")
    realcluster.node_kind = "agent"
    log = realcluster.plane.workdir / "logs" / "node-agent.log"
    with AgentProcess(realcluster.kubeconfig, name=NODE_NAME, log_path=log) as agent:
        yield agent


@pytest.fixture(scope="session")
def realcluster_realnode(realcluster: RealCluster) -> Iterator[RealNode]:
    """The real node (realcluster/realnode.py: kubelet, containerd, runc, CNI) joined to the
    session's control plane; skips with the reason where this machine cannot run one."""
    reason = why_no_node()
    if reason:
        pytest.skip(f"real node skipped: {reason}")
    if realcluster.node_kind == "agent":
        pytest.skip("the node agent runs in this session and would take pods: use --node=real")
    realcluster.node_kind = "real"
    with RealNode(realcluster.plane) as node:
        yield node
