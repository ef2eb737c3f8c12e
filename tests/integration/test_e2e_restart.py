"""Stop the controller at several points of a run and start a new one: one pod per attempt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from taskrun.api.crd import DEFAULT_STATUS
from testcluster import Cluster
from tests.integration.conftest import Runs, poll, run_controller

FAULTS = "stops the controller at a chosen write with injected 403s (devcluster.faults)"


@pytest.fixture
def faults(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    cluster.devcluster.faults.clear()


def block(cluster: Cluster, namespace: str, resource: str, verb: str) -> None:
    """Refuse the controller's ``verb`` on ``resource`` (403: not retried, reconcile backs off)."""
    plan = cluster.devcluster.faults
    plan.user_agent_prefix = "taskrun-controller"
    plan.namespaces = frozenset({namespace})
    plan.resources = frozenset({resource})
    plan.verbs = frozenset({verb})
    plan.error_codes = (403,)
    plan.error_rate = 1.0


@pytest.mark.devcluster_only(FAULTS)
def test_stopped_after_pod_create_before_any_status(faults: Cluster, runs: Runs):
    block(faults, runs.namespace, "taskruns", "patch")
    with run_controller(faults):
        runs.create("r", scenario={"runSeconds": 0.5})
        poll(lambda: runs.pod_creates() == 1, what="the pod create")
        poll(lambda: faults.requests.count(namespace=runs.namespace, verb="patch", code=403))
    assert runs.status("r") == DEFAULT_STATUS  # the CRD's placeholder: nothing written
    faults.devcluster.faults.clear()
    with run_controller(faults):
        status = runs.wait_finished("r")
    assert (status["phase"], status["exitCode"]) == ("Succeeded", 0)
    assert runs.pod_creates() == 1
    # the second controller found the pod by its name: a 409 it adopted, or a cache hit
    assert status["podName"] == "r-1"


def test_stopped_while_running(cluster: Cluster, runs: Runs):
    with run_controller(cluster):
        runs.create("r", scenario={"runSeconds": 1.0, "exitCode": 4})
        runs.wait_status("r", lambda s: s.get("phase") == "Running")
    with run_controller(cluster):
        status = runs.wait_finished("r")
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "ExitCode", 4)
    assert runs.pod_creates() == 1
    poll(lambda: not runs.pods(), what="the pod to go")


@pytest.mark.devcluster_only(FAULTS)
def test_stopped_after_the_terminal_status_before_the_pod_delete(faults: Cluster, runs: Runs):
    block(faults, runs.namespace, "pods", "delete")
    with run_controller(faults):
        runs.create("r", scenario={"exitCode": 0})
        status = runs.wait_finished("r")
        poll(lambda: faults.requests.count(namespace=runs.namespace, verb="delete", code=403))
    assert runs.pod("r-1") is not None
    faults.devcluster.faults.clear()
    patches_before = faults.requests.count(namespace=runs.namespace, verb="patch")
    with run_controller(faults):
        poll(lambda: runs.pod("r-1") is None, what="the pod to be deleted after the restart")
    assert runs.status("r") == status
    assert faults.requests.count(namespace=runs.namespace, verb="patch") == patches_before
    assert runs.pod_creates() == 1


def test_stopped_during_retries(cluster: Cluster, runs: Runs):
    backoff = {"initialSeconds": 1, "maxSeconds": 1}
    with run_controller(cluster):
        runs.create("r", scenario={"exitCode": 1}, retries=2, retryBackoff=backoff)
        runs.wait_status("r", lambda s: s.get("reason") == "Retrying")
    with run_controller(cluster):
        status = runs.wait_finished("r", timeout=10)
    assert (status["phase"], status["attempts"]) == ("Failed", 3)
    assert [h["podName"] for h in status["history"]] == ["r-1", "r-2", "r-3"]
    assert runs.pod_creates() == 3


@pytest.mark.devcluster_only(
    "a seeded 30% rate of injected 500/503/429 answers (devcluster.faults)"
)
def test_a_flaky_api_never_costs_a_second_pod(faults: Cluster, runs: Runs):
    plan = faults.devcluster.faults
    plan.user_agent_prefix = "taskrun-controller"
    plan.namespaces = frozenset({runs.namespace})
    plan.error_codes = (500, 503, 429)
    plan.retry_after = 0
    plan.error_rate = 0.3
    plan.reseed(7)
    names = [f"r{i}" for i in range(5)]
    with run_controller(faults):
        for name in names:
            runs.create(name, scenario={"exitCode": 0, "runSeconds": 0.1})
        finals = [runs.wait_finished(name, timeout=15) for name in names]
        plan.clear()
        poll(lambda: not runs.pods(), timeout=10, what="every pod to be deleted")
    assert [s["phase"] for s in finals] == ["Succeeded"] * len(names)
    assert runs.pod_creates() == len(names)
    assert faults.requests.count(namespace=runs.namespace, code=500) > 0
