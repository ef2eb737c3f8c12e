"""A devcluster with the TaskRun CRD, and a kubernetes client for it: the set-up of the
Airflow client tests (imported by them; the airflow venvs have the kubernetes client)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from kubernetes.client import ApiClient, Configuration
from kubernetes.config import load_kube_config

from devcluster import DevCluster

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def crd_devcluster(directory: Path, *, kubelet: bool = True) -> Iterator[DevCluster]:
    """A started devcluster with crds/ applied and its kubeconfig in ``directory``; without
    a kubelet where the test plays the pod's part itself."""
    dc = DevCluster(kubelet=kubelet, bookmark_interval=1.0).start()
    dc.write_kubeconfig(directory / "kubeconfig")
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        dc.apply_file(crd)
    try:
        yield dc
    finally:
        dc.stop()


@contextlib.contextmanager
def api_client_for(cluster: DevCluster) -> Iterator[ApiClient]:
    """A kubernetes ApiClient configured from the cluster's kubeconfig, closed afterwards."""
    config = Configuration()
    load_kube_config(config_file=str(cluster.kubeconfig_path), client_configuration=config)
    client = ApiClient(config)
    try:
        yield client
    finally:
        client.close()
