"""``--cluster=real``: helper realcluster's control plane, its node (the node agent, or with
``--node=real`` the real kubelet), the audit log, and the controller's ServiceAccount."""

from __future__ import annotations

from pathlib import Path

import pytest

from testcluster import rbac
from testcluster.audit import AuditRequests
from testcluster.cluster import Cluster, Traits


def real_cluster(request: pytest.FixtureRequest) -> Cluster:
    """The session's real control plane as a Cluster, with the node ``--node`` names."""
    plane = request.getfixturevalue("realcluster")
    traits = None
    if request.config.getoption("--node") == "real":
        from realcluster.realnode import BUSYBOX_IMAGE

        request.getfixturevalue("realcluster_realnode")
        traits = Traits(scenarios=False, node="the real node", sidecar_image=BUSYBOX_IMAGE)
    else:
        request.getfixturevalue("realcluster_node")
    admin = Path(plane.kubeconfig)
    audit_log = getattr(plane.plane, "audit_log", None)
    requests = AuditRequests(audit_log) if audit_log else None
    cluster = Cluster("real", admin, requests=requests, traits=traits)
    if requests is not None:
        requests.barrier = lambda token: cluster.get_or_none("configmaps", "default", token)
    namespace, account = rbac.install_identity(cluster, "base")
    cluster.controller_account = (namespace, account)
    scratch = request.getfixturevalue("tmp_path_factory").mktemp("controller-identity")
    cluster.controller_kubeconfig = rbac.token_kubeconfig(
        cluster, admin, namespace, account, scratch / "controller.kubeconfig"
    )
    return cluster
