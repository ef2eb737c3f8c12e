"""``kubectl_real``: kubectl as the real control plane's admin, in the test's namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from real_kubectl import Kubectl

from realcluster.pytest_plugin import RealCluster


@pytest.fixture
def kubectl_real(realcluster: RealCluster, realcluster_ns: str, tmp_path: Path) -> Kubectl:
    """kubectl as the cluster admin, in the test's namespace."""
    return Kubectl(realcluster.kubeconfig, tmp_path / "kubectl-cache", realcluster_ns)
