"""A devcluster with the TaskRun CRD, a kubernetes client for it, fresh namespaces, faults
scoped to one, and the triggerer's loop: the set-up of the Airflow client tests (imported by
them; the airflow venvs have the kubernetes client)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, Configuration
from kubernetes.config import load_kube_config

from devcluster import DevCluster
from devcluster.faults import FaultPlan
from taskrun.airflow.trigger import TaskRunTrigger

ROOT = Path(__file__).resolve().parents[2]
_namespaces = itertools.count(1)


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


@contextlib.contextmanager
def faults_in(cluster: DevCluster, namespace: str, **settings: Any) -> Iterator[FaultPlan]:
    """The cluster's faults (FaultPlan fields) for requests in ``namespace``, cleared after."""
    plan = cluster.faults
    plan.namespaces = frozenset({namespace})
    for key, value in settings.items():
        if not hasattr(plan, key):
            raise AttributeError(f"FaultPlan has no field {key!r}")
        setattr(plan, key, value)
    try:
        yield plan
    finally:
        plan.clear()


def new_namespace(cluster: DevCluster, prefix: str) -> str:
    """A namespace no other test of the session uses."""
    name = f"{prefix}-{next(_namespaces)}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def first_event(trigger: TaskRunTrigger, timeout: float = 30) -> dict[str, Any]:
    """Run the trigger as the triggerer does, until its first event; that event's payload."""

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(asyncio.wait_for(first(), timeout))
