"""The controller in a KopfRunner thread against the session's cluster (--cluster), and
helpers to drive TaskRuns through the one Cluster interface."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import pytest
from kopf.testing import KopfRunner

from controller.config import Settings
from controller.handlers import Controller, register
from controller.main import kopf_settings
from devcluster.pytest_plugin import wait_for
from testcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
TASKRUNS = "taskruns"
SCENARIO = "devcluster.taskrun.dev/scenario"
CONTROLLER_AGENT = "taskrun-controller"
FINISHED = ("Succeeded", "Failed", "Skipped", "Cancelled")
C = TypeVar("C", bound=Controller)


def poll(condition: Callable[[], Any], timeout: float = 8.0, what: str = "condition") -> Any:
    """Poll until condition() is truthy; fail naming ``what`` on timeout."""
    return wait_for(condition, timeout, what=what)


def stays(condition: Callable[[], Any], seconds: float = 0.5, what: str = "condition") -> None:
    """Assert condition() holds for a while: how a test shows that something does not happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), f"{what} stopped holding"
        time.sleep(0.02)


@pytest.fixture(scope="session")
def cluster(kube: Cluster) -> Cluster:
    """The session's cluster with the TaskRun CRD installed."""
    kube.apply_file(ROOT / "crds" / "taskrun.yaml")
    return kube


@overload
def run_controller(
    cluster: Cluster, *, priority: int | None = None, await_lists: bool = True, **overrides: Any
) -> AbstractContextManager[Controller]: ...


@overload
def run_controller(
    cluster: Cluster,
    make: Callable[[Settings], C],
    *,
    priority: int | None = None,
    await_lists: bool = True,
    **overrides: Any,
) -> AbstractContextManager[C]: ...


@contextlib.contextmanager
def run_controller(
    cluster: Cluster,
    make: Callable[[Settings], Any] = Controller,
    *,
    priority: int | None = None,
    await_lists: bool = True,
    **overrides: Any,
) -> Iterator[Any]:
    """Run the controller (all namespaces) in a KopfRunner thread until the block ends;
    yields once it has listed TaskRuns and pods.

    ``overrides`` are Settings fields over ``cluster.controller_settings``; ``make`` builds
    the controller from them (a test's subclass). With ``peering=NAME`` it is one replica
    in that kopf peering, with kopf's ``priority`` (the highest one is active); without,
    ``--standalone``. ``await_lists=False`` yields at once: a replica that starts paused
    lists nothing until its peers of higher priority are gone.

    It logs in with ``cluster.controller_kubeconfig``: on the real control plane, its
    ServiceAccount's token bound to the shipped ClusterRole.
    """
    settings = Settings(
        metrics_port=0, health_port=0, **{**cluster.controller_settings, **overrides}
    )
    if settings.peering:
        mode = ["--peering", settings.peering]
        if priority is not None:
            mode += ["--priority", str(priority)]
    elif priority is not None:
        raise ValueError(f"priority={priority} needs peering=NAME: a standalone one has no peers")
    else:
        mode = ["--standalone"]
    controller = make(settings)
    registry = register(controller)
    since = time.time()
    old = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(cluster.controller_kubeconfig)
    try:
        with KopfRunner(
            ["run", "--all-namespaces", *mode],
            registry=registry,
            settings=kopf_settings(settings),
            timeout=10,
        ):
            if await_lists:
                watching(cluster, since)
            yield controller
    finally:
        if old is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = old


@contextlib.contextmanager
def kopf_peering(cluster: Cluster, name: str) -> Iterator[str]:
    """A ClusterKopfPeering ``name`` the controller may use (kopf's CRDs and a grant to
    read and patch it), deleted when the block ends."""
    cluster.apply_file(ROOT / "deploy" / "kopf-peering" / "peering-crds.yaml")
    cluster.wait_established("clusterkopfpeerings.kopf.dev")
    verbs = ["get", "list", "watch", "patch"]
    rules = [{"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": verbs}]
    cluster.grant_controller(f"{name}-peering", rules)
    cluster.apply(
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
    )
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            cluster.delete("clusterkopfpeerings", None, name)


def watching(cluster: Cluster, since: float) -> None:
    """Until the controller has listed TaskRuns and pods: kopf's ready flag fires before its
    watches exist, and a finished initial list means they open from that resourceVersion."""
    if not cluster.has_requests:
        # Nobody counts requests on a cluster without an audit log: give kopf the time its
        # first lists take on loopback instead.
        time.sleep(2)
        return
    for resource in ("taskruns", "pods"):
        poll(
            lambda r=resource: any(
                rec.started >= since
                for rec in cluster.requests.filter(verb="list", resource=r, code=200)
            ),
            what=f"the controller to list {resource}",
        )


@pytest.fixture(scope="module")
def controller(cluster: Cluster) -> Iterator[Controller]:
    """One controller for the module."""
    with run_controller(cluster) as running:
        yield running


@dataclass
class Plain:
    """Credentials of an unauthenticated loopback server, in the shape the controller's
    Client reads (kopf's ConnectionInfo); ``token`` adds a bearer header."""

    server: str
    token: str | None = None
    ca_path: None = None
    ca_data: None = None
    insecure: None = None
    certificate_path: None = None
    certificate_data: None = None
    private_key_path: None = None
    private_key_data: None = None

    def as_http_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass
class Runs:
    """TaskRuns in one test namespace."""

    cluster: Cluster
    namespace: str

    def create(
        self,
        name: str,
        scenario: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        spec.setdefault("image", "busybox:1.36")
        if scenario is not None:
            self.cluster.require_scenarios()
            spec.setdefault("annotations", {})[SCENARIO] = json.dumps(scenario)
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if annotations:
            meta["annotations"] = annotations
        body = {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun", "metadata": meta}
        body["spec"] = spec
        return dict(self.cluster.create(TASKRUNS, self.namespace, body))

    def get(self, name: str) -> dict[str, Any] | None:
        return self.cluster.get_or_none(TASKRUNS, self.namespace, name)

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        taskrun = self.get(name)
        assert taskrun is not None
        taskrun["spec"] = {**taskrun["spec"], **spec}
        self.cluster.replace(TASKRUNS, self.namespace, name, taskrun)

    def annotate(self, name: str, annotations: dict[str, str]) -> None:
        taskrun = self.get(name)
        assert taskrun is not None
        meta = taskrun["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        self.cluster.replace(TASKRUNS, self.namespace, name, taskrun)

    def wait_status(
        self, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 8.0
    ) -> dict[str, Any]:
        poll(lambda: check(self.status(name)), timeout, f"status of {name} ({self.status(name)})")
        return self.status(name)

    def wait_finished(self, name: str, timeout: float = 8.0) -> dict[str, Any]:
        return self.wait_status(name, lambda s: s.get("phase") in FINISHED, timeout)

    def pods(self) -> list[dict[str, Any]]:
        return self.cluster.list("pods", self.namespace)

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.cluster.get_or_none("pods", self.namespace, name)

    def events(self) -> list[dict[str, Any]]:
        return self.cluster.list("events", self.namespace)

    def writes(self, name: str | None = None) -> list[Any]:
        """The controller's writes in this namespace, Events excluded."""
        return [
            r
            for r in self.cluster.requests.filter(
                namespace=self.namespace,
                user_agent=CONTROLLER_AGENT,
                verb=("create", "update", "patch", "delete"),
            )
            if r.resource != "events"
        ]

    def pod_creates(self) -> int:
        """Pods the controller created here (201s): the tests' own pods do not count, nor
        the scheduler's bindings (a create of pods/binding on a real API server)."""
        return self.cluster.requests.count(
            namespace=self.namespace,
            verb="create",
            resource="pods",
            subresource="",
            code=201,
            user_agent=CONTROLLER_AGENT,
        )


@pytest.fixture
def runs(cluster: Cluster, kube_ns: str) -> Runs:
    return Runs(cluster, kube_ns)
