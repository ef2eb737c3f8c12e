"""The cluster the tests run against: devcluster, the real control plane, or any kubeconfig.

``pytest_plugins = ["testcluster.pytest_plugin"]`` adds ``--cluster`` and the fixtures
``kube`` and ``kube_ns``; tests hold a :class:`Cluster` and never the simulator itself,
except those marked ``devcluster_only``.
"""

from testcluster.client import ApiError, Kube, Resource
from testcluster.cluster import Cluster

__all__ = ["ApiError", "Cluster", "Kube", "Resource"]
