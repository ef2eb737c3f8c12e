"""``--cluster=real``: helper realcluster's control plane, the node agent, the audit log,
and the controller's ServiceAccount."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testcluster import rbac
from testcluster.audit import AuditRequests
from testcluster.cluster import Cluster

NODE_READY_TIMEOUT = 60.0


def real_cluster(request: pytest.FixtureRequest) -> Cluster:
    """The session's real control plane as a Cluster, with a node playing scenarios."""
    plane = request.getfixturevalue("realcluster")
    request.getfixturevalue("real_node")
    admin = Path(plane.kubeconfig)
    audit_log = getattr(plane.plane, "audit_log", None)
    cluster = Cluster("real", admin, requests=AuditRequests(audit_log) if audit_log else None)
    namespace, account = rbac.install_identity(cluster, "base")
    cluster.controller_account = (namespace, account)
    scratch = request.getfixturevalue("tmp_path_factory").mktemp("controller-identity")
    cluster.controller_kubeconfig = rbac.token_kubeconfig(
        cluster, admin, namespace, account, scratch / "controller.kubeconfig"
    )
    return cluster


@contextlib.contextmanager
def node_agent(kubeconfig: Path, log: Path) -> Iterator[subprocess.Popen[str]]:
    """devcluster's kubelet as a node of the real API server, until the block ends."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devcluster.node", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert process.stdout is not None
            # The agent prints one line once its Node is registered and its pods listed.
            ready, _, _ = select.select([process.stdout], [], [], NODE_READY_TIMEOUT)
            line = process.stdout.readline() if ready else ""
            if "ready" not in line:
                raise RuntimeError(f"the node agent did not come up ({line!r}); see {log}")
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
