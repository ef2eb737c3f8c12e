"""Fixtures of the chaos and fuzz suites: a private devcluster and the controller subprocess.

Each module gets its own DevCluster (not the session-wide `devcluster` fixture) because the
chaos run turns faults on and would otherwise disturb other tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The harness lives in bench/chaos.py so `python -m bench.chaos` and CI share it.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def missing_cluster() -> str | None:
    try:
        import devcluster
    except ImportError as exc:
        return f"devcluster is not importable: {exc}"
    if getattr(devcluster, "DevCluster", None) is None:
        return "devcluster does not export DevCluster yet"
    return None


def missing_pieces() -> str | None:
    """Why the end-to-end suites cannot run yet, or None when every piece they drive exists."""
    reason = missing_cluster()
    if reason:
        return reason
    if not (ROOT / "crds" / "taskrun.yaml").is_file():
        return "crds/taskrun.yaml is absent"
    if importlib.util.find_spec("controller.__main__") is None:
        return "controller/__main__.py is absent: `python -m controller` cannot start"
    return None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    reason = missing_cluster()
    if reason:
        pytest.skip(reason)
    from bench.chaos import started_cluster

    with started_cluster() as dc:
        for attr in ("faults", "requests", "write_kubeconfig", "url"):
            if not hasattr(dc, attr):
                pytest.skip(f"DevCluster has no `{attr}` yet (docs/architecture.md, devcluster)")
        yield dc


@pytest.fixture(scope="module")
def pieces() -> None:
    """Skip, naming the missing piece, unless devcluster, the CRD and the controller exist."""
    reason = missing_pieces()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def crd_installed(pieces: None, cluster: Any) -> Any:
    from bench.chaos import Api

    async def install() -> None:
        api = Api(cluster.url)
        try:
            await api.install_crd()
        finally:
            await api.close()

    asyncio.run(install())
    return cluster


class ControllerRequests:
    """The audit log's records of one user (the controller's ServiceAccount): on a real
    API server the harness must not count the scheduler's, the node's or other tests'."""

    def __init__(self, requests: Any, user: str) -> None:
        self._requests = requests
        self._user = user

    @property
    def records(self) -> list[Any]:
        return [r for r in self._requests.records if getattr(r, "user", "") == self._user]

    def __len__(self) -> int:
        return len(self.records)


class RealTarget:
    """What bench.chaos needs of a cluster, on the real control plane: no fault plan (the
    run is SIGKILLs only), the controller logging in as its ServiceAccount."""

    faults = None

    def __init__(self, kube: Any) -> None:
        from testcluster import rbac

        self.url = kube.url
        self.ssl_context = kube.endpoint.ssl_context
        self.headers = kube.endpoint.headers
        self._kubeconfig = kube.controller_kubeconfig
        user = rbac.service_account_user(*kube.controller_account)
        self.requests = ControllerRequests(kube.requests, user)

    def write_kubeconfig(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(Path(self._kubeconfig).read_text())
        return target


@pytest.fixture(scope="module")
def chaos_target(request: pytest.FixtureRequest, pieces: None) -> Iterator[Any]:
    """The chaos run's cluster: a private devcluster with its fault plan, or (--cluster=real)
    the session's real control plane, SIGKILLs only."""
    if request.config.getoption("--cluster") == "devcluster":
        yield request.getfixturevalue("cluster")
        return
    kube = request.getfixturevalue("kube")
    kube.require_scenarios()
    if kube.controller_account is None:
        pytest.skip(f"--cluster={kube.flavor}: the controller has no ServiceAccount to audit")
    yield RealTarget(kube)
