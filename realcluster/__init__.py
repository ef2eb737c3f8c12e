"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager
and kube-scheduler, built from Go modules (this directory's go.mod) and run on loopback.

``python -m realcluster build`` builds the binaries into ``realcluster/bin``;
``python -m realcluster up --kubeconfig PATH`` runs a control plane until Ctrl-C;
``pytest_plugins = ["realcluster.pytest_plugin"]`` gives the ``realcluster`` fixture.
Product code never imports this package (import-linter).
"""

from realcluster.build import BIN_DIR, KUBERNETES_VERSION, build, missing_binaries
from realcluster.controlplane import ControlPlane, ControlPlaneError

__all__ = [
    "BIN_DIR",
    "KUBERNETES_VERSION",
    "ControlPlane",
    "ControlPlaneError",
    "build",
    "missing_binaries",
]
