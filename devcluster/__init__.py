"""devcluster: an in-process, simulated Kubernetes API and kubelet for tests and demos."""

from devcluster.cluster import DevCluster, kubeconfig
from devcluster.errors import ApiError

__all__ = ["ApiError", "DevCluster", "kubeconfig"]
