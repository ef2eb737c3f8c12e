"""A write answered NotFound for the TaskRun itself: the run is gone, the reconcile ends.

The controller here never hears the run's DELETED (a late or lost watch event, simulated by
dropping it), so its cache still holds the run when the garbage collector deletes the pod
(ownerReferences) and the pod's DELETED reconciles it: the status write is answered 404.
That answer must end it as the DELETED would have: one 404, then nothing more about the run
(no error back-off of 1, 2, 5 ... s, each answered 404 again).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from controller.config import Settings
from controller.handlers import Controller
from controller.metrics import METRICS
from testcluster import Cluster
from tests.integration.conftest import CONTROLLER_AGENT, Runs, poll, run_controller, stays

NAME = "gone-behind-the-cache"


class DeafToOneDeletion(Controller):
    """The controller, with the watch's DELETED of one TaskRun lost."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.loop: asyncio.AbstractEventLoop | None = None

    def on_taskrun(self, event_type: str | None, body: Any, *, owned: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        if event_type == "DELETED" and body["metadata"]["name"] == NAME:
            return
        super().on_taskrun(event_type, body, owned=owned)


def reconcile_errors() -> float:
    get = METRICS.registry.get_sample_value
    return sum(
        get("taskrun_reconcile_errors_total", {"kind": k}) or 0.0 for k in ("api", "internal")
    )


def not_found(cluster: Cluster, namespace: str, name: str, since: float) -> list[Any]:
    """The controller's requests about ``name`` since ``since`` answered 404."""
    return [
        r
        for r in cluster.requests.filter(namespace=namespace, user_agent=CONTROLLER_AGENT)
        if r.started >= since and r.name == name and r.code == 404
    ]


def test_a_status_write_answered_not_found_forgets_the_run(
    cluster: Cluster, kube_ns: str, runs: Runs
) -> None:
    with run_controller(cluster, DeafToOneDeletion) as c:
        runs.create(NAME, scenario={"runSeconds": 300})
        status = runs.wait_status(NAME, lambda s: s.get("phase") == "Running", 20)
        pod_name = status["podName"]
        key = (kube_ns, NAME)
        assert key in c.cache.taskruns
        errors = reconcile_errors()

        deleted = time.time()
        cluster.delete("taskruns", kube_ns, NAME)
        poll(lambda: runs.get(NAME) is None, 20, "the TaskRun gone")
        # Nobody deletes the pod but the garbage collector: it must not be left behind. On a
        # real cluster it first has to discover the TaskRun resource (every 30 s after the
        # CRD appears, docs/testing.md).
        poll(
            lambda: runs.pod(pod_name) is None,
            20 if cluster.flavor == "devcluster" else 90,
            "the garbage collector to delete the pod",
        )

        def not_found_since() -> list[Any]:
            return not_found(cluster, kube_ns, NAME, deleted)

        poll(lambda: not_found_since(), 20, "the status write of the deleted run answered 404")
        poll(lambda: key not in c.cache.taskruns, 20, "the run to leave the cache at its 404")
        assert c.loop is not None
        asyncio.run_coroutine_threadsafe(c.drained(), c.loop).result(20)
        assert [r.subresource for r in not_found_since()] == ["status"], not_found_since()
        assert reconcile_errors() == errors, "a gone run is no failed reconcile"
        # An absence: without the fix the back-off asks again after 1 s and 3 s; 4 s covers
        # both.
        stays(lambda: len(not_found_since()) == 1, 4, "no second request answered 404")
        assert NAME not in str(c._queue._timers), "no timer left for the gone run"


@pytest.mark.devcluster_only("delays the controller's status writes (devcluster.faults)")
def test_a_run_deleted_while_its_status_write_waits_ends_without_an_error(
    cluster: Cluster, kube_ns: str, runs: Runs
) -> None:
    """The run is deleted between the decision and its status write (held 2 s by the fault
    plan): the write's 404 ends the reconcile without an error (no back-off, no warning),
    whichever of the 404 and the run's DELETED comes first."""
    name = "deleted-during-the-write"
    faults = cluster.devcluster.faults
    try:
        with run_controller(cluster) as c:
            runs.create(name, scenario={"runSeconds": 300})
            status = runs.wait_status(name, lambda s: s.get("phase") == "Running", 20)
            pod_key = (kube_ns, status["podName"])
            poll(lambda: pod_key in c.cache.pods, 20, "the pod in the cache")
            errors = reconcile_errors()
            faults.user_agent_prefix = CONTROLLER_AGENT
            faults.resources = frozenset({"taskruns"})
            faults.verbs = frozenset({"patch"})
            faults.latency = 2.0
            since = time.time()
            # The pod's DELETED reconciles the run: it decides a status write, held 2 s.
            cluster.delete("pods", kube_ns, pod_key[1], grace_period=0)
            poll(lambda: pod_key not in c.cache.pods, 20, "the pod's DELETED in the cache")
            cluster.delete("taskruns", kube_ns, name)
            poll(lambda: not_found(cluster, kube_ns, name, since), 20, "the held write's 404")
            poll(lambda: (kube_ns, name) not in c.cache.taskruns, 20, "the run forgotten")
            assert [r.subresource for r in not_found(cluster, kube_ns, name, since)] == ["status"]
            assert reconcile_errors() == errors, "a gone run is no failed reconcile"
            # An absence: a failed reconcile would be tried again after 1 s and 3 s.
            stays(
                lambda: len(not_found(cluster, kube_ns, name, since)) == 1,
                4,
                "no second request answered 404",
            )
            assert reconcile_errors() == errors
    finally:
        faults.clear()
