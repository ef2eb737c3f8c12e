"""The controller in a KopfRunner thread against a devcluster, and helpers to drive TaskRuns."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from controller.config import Settings
from controller.handlers import Controller, register
from controller.main import kopf_settings
from devcluster import ApiError, DevCluster
from devcluster.pytest_plugin import wait_for
from devcluster.resources import PODS, ResourceKey

ROOT = Path(__file__).resolve().parents[2]
TASKRUNS = ResourceKey("taskrun.dev", "v1alpha1", "taskruns")
SCENARIO = "devcluster.taskrun.dev/scenario"
CONTROLLER_AGENT = "taskrun-controller"
FINISHED = ("Succeeded", "Failed", "Skipped", "Cancelled")


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
def cluster(devcluster: DevCluster) -> DevCluster:
    """The session devcluster with the TaskRun CRD installed."""
    devcluster.apply_file(ROOT / "crds" / "taskrun.yaml")
    return devcluster


@contextlib.contextmanager
def run_controller(cluster: DevCluster, **overrides: Any) -> Iterator[Controller]:
    """Run the controller (all namespaces) until the block ends; yields when it watches."""
    assert cluster.kubeconfig_path is not None
    settings = Settings(metrics_port=0, health_port=0, **overrides)
    controller = Controller(settings)
    registry = register(controller)
    since = time.time()
    old = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig_path)
    try:
        with KopfRunner(
            ["run", "--standalone", "--all-namespaces"],
            registry=registry,
            settings=kopf_settings(settings),
            timeout=10,
        ):
            # kopf's ready flag fires before its watches exist; a finished initial list of
            # both resources means the watches open from that resourceVersion.
            for resource in ("taskruns", "pods"):
                poll(
                    lambda r=resource: any(
                        rec.started >= since
                        for rec in cluster.requests.filter(verb="list", resource=r, code=200)
                    ),
                    what=f"the controller to list {resource}",
                )
            yield controller
    finally:
        if old is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = old


@pytest.fixture(scope="module")
def controller(cluster: DevCluster) -> Iterator[Controller]:
    """One controller for the module."""
    with run_controller(cluster) as running:
        yield running


@dataclass
class Runs:
    """TaskRuns in one test namespace."""

    cluster: DevCluster
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
            spec.setdefault("annotations", {})[SCENARIO] = json.dumps(scenario)
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if annotations:
            meta["annotations"] = annotations
        body = {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun", "metadata": meta}
        body["spec"] = spec
        return self.cluster.call(self.cluster.store.create(TASKRUNS, self.namespace, body))

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.cluster.call(self.cluster.store.get(TASKRUNS, self.namespace, name))
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        taskrun = self.get(name)
        assert taskrun is not None
        taskrun["spec"] = {**taskrun["spec"], **spec}
        self.cluster.call(self.cluster.store.replace(TASKRUNS, self.namespace, name, taskrun))

    def annotate(self, name: str, annotations: dict[str, str]) -> None:
        taskrun = self.get(name)
        assert taskrun is not None
        meta = taskrun["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        self.cluster.call(self.cluster.store.replace(TASKRUNS, self.namespace, name, taskrun))

    def wait_status(
        self, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 8.0
    ) -> dict[str, Any]:
        poll(lambda: check(self.status(name)), timeout, f"status of {name} ({self.status(name)})")
        return self.status(name)

    def wait_finished(self, name: str, timeout: float = 8.0) -> dict[str, Any]:
        return self.wait_status(name, lambda s: s.get("phase") in FINISHED, timeout)

    def pods(self) -> list[dict[str, Any]]:
        return list(self.cluster.call(self.cluster.store.list(PODS, self.namespace)))

    def pod(self, name: str) -> dict[str, Any] | None:
        try:
            return self.cluster.call(self.cluster.store.get(PODS, self.namespace, name))
        except ApiError as err:
            if err.code == 404:
                return None
            raise

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
        return self.cluster.requests.count(
            namespace=self.namespace, verb="create", resource="pods", code=201
        )


@pytest.fixture
def runs(cluster: DevCluster, devcluster_ns: str) -> Runs:
    return Runs(cluster, devcluster_ns)
