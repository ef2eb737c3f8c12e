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
        # Nobody deletes the pod but the garbage collector: it must not be left behind.
        poll(lambda: runs.pod(pod_name) is None, 30, "the garbage collector to delete the pod")

        def not_found() -> list[Any]:
            return [
                r
                for r in cluster.requests.filter(namespace=kube_ns, user_agent=CONTROLLER_AGENT)
                if r.started >= deleted and r.name == NAME and r.code == 404
            ]

        poll(lambda: not_found(), 20, "the status write of the deleted run answered 404")
        poll(lambda: key not in c.cache.taskruns, 20, "the run to leave the cache at its 404")
        assert c.loop is not None
        asyncio.run_coroutine_threadsafe(c.drained(), c.loop).result(20)
        assert [r.subresource for r in not_found()] == ["status"], not_found()
        assert reconcile_errors() == errors, "a gone run is no failed reconcile"
        # An absence: without the fix the back-off asks again after 1 s and 3 s; 4 s covers
        # both.
        stays(lambda: len(not_found()) == 1, 4, "no second request answered 404")
        assert NAME not in str(c._queue._timers), "no timer left for the gone run"
