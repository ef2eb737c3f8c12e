"""``--cluster=devcluster|real|kubeconfig``: which API server the suites run against;
``--node=agent|real``: what runs the pods of ``--cluster=real``.

Fixtures: ``kube`` (the session's Cluster handle) and ``kube_ns`` (a fresh namespace per
test). ``@pytest.mark.devcluster_only("why")`` skips a test on the other clusters, and
``@pytest.mark.simulated_node_only("why")`` where no simulated node plays devcluster's
scenario annotation (the real node, a kubeconfig's cluster); both show why.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testcluster.audit import AuditRequests
from testcluster.cluster import FLAVORS, NODES, Cluster

_counter = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testcluster")
    group.addoption(
        "--cluster",
        choices=FLAVORS,
        default=os.environ.get("TASKRUN_TEST_CLUSTER", "devcluster"),
        help="devcluster (in-process simulator, default), real (kube-apiserver, etcd, "
        "controller manager and scheduler built from Go modules, plus the node agent), or "
        "kubeconfig (the cluster $KUBECONFIG points at, e.g. kind)",
    )
    group.addoption(
        "--node",
        choices=NODES,
        default=os.environ.get("TASKRUN_TEST_NODE", "agent"),
        help="with --cluster=real: agent (devcluster's node agent: scripted scenarios, fast, "
        "default) or real (kubelet, containerd and runc: true containers, docs/realnode.md)",
    )
    group.addoption(
        "--audit-log",
        default=None,
        help="with --cluster=kubeconfig: the API server's JSON audit log, for request "
        "accounting (tests that count requests skip without it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "devcluster_only(reason): needs the simulator (faults, store internals, its timing "
        "knobs); skipped on --cluster=real and kubeconfig with the reason",
    )
    config.addinivalue_line(
        "markers",
        "simulated_node_only(reason): needs pods that play devcluster's scenario annotation "
        "(devcluster's kubelet or the node agent); skipped on --node=real and "
        "--cluster=kubeconfig with the reason",
    )
    if config.getoption("--node") == "real" and config.getoption("--cluster") != "real":
        raise pytest.UsageError(
            f"--node=real needs --cluster=real, not --cluster={config.getoption('--cluster')}"
        )


def _reason(marker: pytest.Mark) -> str:
    return str(marker.args[0] if marker.args else marker.kwargs.get("reason", ""))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    flavor = config.getoption("--cluster")
    simulated_node = flavor == "devcluster" or (
        flavor == "real" and config.getoption("--node") == "agent"
    )
    for item in items:
        marker = item.get_closest_marker("devcluster_only")
        if marker is not None and flavor != "devcluster":
            item.add_marker(pytest.mark.skip(reason=f"devcluster only: {_reason(marker)}"))
        marker = item.get_closest_marker("simulated_node_only")
        if marker is not None and not simulated_node:
            item.add_marker(pytest.mark.skip(reason=f"simulated node only: {_reason(marker)}"))


def pytest_report_header(config: pytest.Config) -> str:
    flavor = config.getoption("--cluster")
    if flavor == "real":
        return f"cluster: real, node: {config.getoption('--node')}"
    return f"cluster: {flavor}"


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """The cluster this session runs against."""
    flavor = request.config.getoption("--cluster")
    if flavor == "devcluster":
        dev = request.getfixturevalue("devcluster")
        assert dev.kubeconfig_path is not None
        return Cluster(flavor, dev.kubeconfig_path, requests=dev.requests, devcluster=dev)
    if flavor == "real":
        return request.getfixturevalue("real_kube")
    path = os.environ.get("KUBECONFIG")
    if not path:
        pytest.fail("--cluster=kubeconfig needs KUBECONFIG")
    audit = request.config.getoption("--audit-log")
    requests = AuditRequests(Path(audit)) if audit else None
    cluster = Cluster(flavor, Path(path.split(os.pathsep)[0]), requests=requests)
    if requests is not None:
        requests.barrier = lambda token: cluster.get_or_none("configmaps", "default", token)
    return cluster


@pytest.fixture
def kube_ns(kube: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test; deleted afterwards (not waited for)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"k{os.getpid() % 1000}-{next(_counter)}-{base}"[:63].rstrip("-")
    kube.create_namespace(name)
    try:
        yield name
    finally:
        with contextlib.suppress(OSError):  # the session cluster is already gone
            kube.delete("namespaces", None, name, missing_ok=True)


@pytest.fixture(scope="session")
def real_kube(request: pytest.FixtureRequest) -> Cluster:
    """The real control plane with its node (``--node``) and request accounting from its
    audit log."""
    from testcluster.real import real_cluster

    return real_cluster(request)
