"""The pod delete after the terminal status leaves the worker (controller/disposer.py) and is
never lost: a refused one is decided again, and it never comes before the status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller import metrics
from testcluster import Cluster
from tests.integration.conftest import CONTROLLER_AGENT, Runs, poll, run_controller

FAULTS = "refuses the controller's pod deletes with injected 403s (devcluster.faults)"


@pytest.fixture
def faults(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    cluster.devcluster.faults.clear()


def refuse_pod_deletes(cluster: Cluster, namespace: str) -> None:
    """403: the client does not retry it, so only the disposer's own retry can."""
    plan = cluster.devcluster.faults
    plan.user_agent_prefix = CONTROLLER_AGENT
    plan.namespaces = frozenset({namespace})
    plan.resources = frozenset({"pods"})
    plan.verbs = frozenset({"delete"})
    plan.error_codes = (403,)
    plan.error_rate = 1.0


def pod_deletes(cluster: Cluster, namespace: str, **filters: object) -> int:
    return cluster.requests.count(
        namespace=namespace, verb="delete", resource="pods", user_agent=CONTROLLER_AGENT, **filters
    )


@pytest.mark.devcluster_only(FAULTS)
def test_a_refused_pod_delete_is_decided_again_and_the_pod_goes(faults: Cluster, runs: Runs):
    failed_before = metrics.METRICS.pod_deletes_failed._value.get()
    refuse_pod_deletes(faults, runs.namespace)
    with run_controller(faults):
        runs.create("r", scenario={"exitCode": 0})
        status = runs.wait_finished("r")
        poll(lambda: pod_deletes(faults, runs.namespace, code=403), what="the refused delete")
        # Refused once: the next try comes after the disposer's backoff (1 s), by which
        # time the API server takes it.
        faults.devcluster.faults.clear()
        poll(lambda: runs.pod("r-1") is None, timeout=10, what="the pod to go after the refusal")
        assert runs.status("r") == status
    assert pod_deletes(faults, runs.namespace, code=403) == 1
    assert status["phase"] == "Succeeded"
    assert runs.pod_creates() == 1
    assert metrics.METRICS.pod_deletes_failed._value.get() - failed_before == 1


def test_the_pod_delete_comes_after_the_terminal_status(cluster: Cluster, runs: Runs):
    if not cluster.has_requests:
        pytest.skip("needs the cluster's request log (an audit log) to order the writes")
    with run_controller(cluster):
        runs.create("r", scenario={"exitCode": 3})
        status = runs.wait_finished("r")
        poll(lambda: runs.pod("r-1") is None, timeout=10, what="the pod to go")
    assert (status["phase"], status["exitCode"]) == ("Failed", 3)
    writes = [(w.verb, w.resource) for w in runs.writes() if w.resource in ("pods", "taskruns")]
    assert writes[-1] == ("delete", "pods"), writes
    assert writes.count(("delete", "pods")) == 1, writes
    assert runs.pod_creates() == 1


def test_every_attempts_pod_goes_retried_and_final(cluster: Cluster, runs: Runs):
    """A retried attempt's pod is deleted on the worker, the last one beside it: both go."""
    backoff = {"initialSeconds": 1, "maxSeconds": 1}
    with run_controller(cluster):
        runs.create("r", scenario={"exitCode": 1}, retries=1, retryBackoff=backoff)
        status = runs.wait_finished("r", timeout=15)
        poll(lambda: not runs.pods(), timeout=10, what="both attempts' pods to go")
    assert (status["phase"], status["attempts"]) == ("Failed", 2)
    assert runs.pod_creates() == 2
