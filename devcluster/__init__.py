"""devcluster: an in-process, simulated Kubernetes API and kubelet for tests and demos."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devcluster.errors import ApiError

if TYPE_CHECKING:
    from devcluster.cluster import DevCluster, kubeconfig

__all__ = ["ApiError", "DevCluster", "kubeconfig"]


def __getattr__(name: str) -> Any:
    # The API server is loaded on first use: the node agent (python -m devcluster.node)
    # needs only the kubelet, and starts faster without it.
    if name in ("DevCluster", "kubeconfig"):
        from devcluster import cluster

        return getattr(cluster, name)
    raise AttributeError(f"module 'devcluster' has no attribute {name!r}")
