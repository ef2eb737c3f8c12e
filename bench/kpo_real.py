"""The real control plane for `python -m bench.kpo --cluster real`.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler (realcluster/, the
binaries of `make realcluster-bin`), the node agent playing the pods' scenario annotation,
the TaskRun CRD, and the controller as a subprocess logged in as deploy/base's
ServiceAccount (a TokenRequest token, the shipped ClusterRole), as on a real cluster.

Requests are read from kube-apiserver's audit log (realcluster/audit.py's Metadata-level
policy; testcluster.audit reads it into the RequestRecords devcluster keeps), so the
attribution by user agent in bench.kpo is the same on both clusters.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.cluster import ROOT, running_controller_audited
from devcluster.accounting import RequestLog
from devcluster.node import NODE_NAME, AgentProcess
from realcluster import KUBERNETES_VERSION, ControlPlane
from testcluster import rbac
from testcluster.audit import AuditRequests
from testcluster.cluster import Cluster

SA_TIMEOUT = 60.0
WATCH_TIMEOUT = 60.0


class RealBench:
    """What bench.kpo needs of a cluster: apply, the request log, a kubeconfig for the
    workers (the admin's), and the controller's identity."""

    def __init__(self, plane: ControlPlane, cluster: Cluster, controller_kubeconfig: Path):
        self.plane = plane
        self.cluster = cluster
        self.controller_kubeconfig = controller_kubeconfig
        namespace, account = cluster.controller_account or ("", "")
        self.controller_user = rbac.service_account_user(namespace, account)
        self.server_version = KUBERNETES_VERSION

    @property
    def requests(self) -> RequestLog:
        return self.cluster.requests

    def apply(self, obj: dict[str, Any]) -> Any:
        return self.cluster.apply(obj)

    def write_kubeconfig(self, path: Path) -> None:
        shutil.copyfile(self.plane.kubeconfig, path)
        Path(path).chmod(0o600)

    def namespace_ready(self, namespace: str) -> None:
        """Until the ServiceAccount controller made `default` in `namespace`: before that,
        ServiceAccount admission refuses every pod there."""
        deadline = time.monotonic() + SA_TIMEOUT
        while self.cluster.get_or_none("serviceaccounts", namespace, "default") is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ServiceAccount {namespace}/default after {SA_TIMEOUT} s")
            time.sleep(0.1)


@contextlib.contextmanager
def running_real_cluster(workdir: Path) -> Iterator[RealBench]:
    """The control plane and the node agent, with the CRD and the controller's identity."""
    plane = ControlPlane(workdir=workdir / "plane")
    node: AgentProcess | None = None
    try:
        plane.start()
        node = AgentProcess(
            plane.kubeconfig, name=NODE_NAME, log_path=plane.workdir / "logs" / "node-agent.log"
        ).start()
        requests = AuditRequests(plane.audit_log)
        cluster = Cluster("real", plane.kubeconfig, requests=requests)
        # Read the log up to a request of our own, so what answered before is in it.
        requests.barrier = lambda token: cluster.get_or_none("configmaps", "default", token)
        cluster.apply_file(ROOT / "crds" / "taskrun.yaml")
        namespace, account = rbac.install_identity(cluster, "base")
        cluster.controller_account = (namespace, account)
        controller_kubeconfig = rbac.token_kubeconfig(
            cluster, plane.kubeconfig, namespace, account, workdir / "controller.kubeconfig"
        )
        yield RealBench(plane, cluster, controller_kubeconfig)
    finally:
        if node is not None:
            node.stop()
        plane.stop()


def running_controller_real(
    bench: RealBench, log: Path
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """`python -m controller --all-namespaces` as its ServiceAccount; yields once it watches
    TaskRuns and pods (kopf says ready before its watches exist)."""
    return running_controller_audited(
        bench.controller_kubeconfig,
        bench.controller_user,
        lambda: bench.requests.records,
        log,
        timeout=WATCH_TIMEOUT,
    )
