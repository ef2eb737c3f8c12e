"""A standby replica acts on nothing, not even the timers it set while it was active.

Two controllers peer by priority, each in its own thread with its own kopf operator, and
each sends its own User-Agent, so the API server's request log says who wrote what. The
one of lower priority starts alone (active), starts a TaskRun whose activeDeadlineSeconds
is due later, and so holds the deadline's timer. Then the one of higher priority starts:
kopf pauses the first. When the deadline comes, only the active replica may delete the
pod, write the status and post the Event; the standby's timer fires into a paused queue.
Before the work queue honoured kopf's pause, both replicas killed the run. When the active
replica stops, the standby resumes and runs the key it held only after its watches listed
again: it sees the run finished and writes no second status or Event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from controller.config import Settings
from controller.handlers import Controller
from controller.k8s import COMPONENT, USER_AGENT, Client
from testcluster import Cluster
from tests.integration.conftest import Runs, kopf_peering, poll, run_controller, stays

PEERING = "ha-pause-test"
DEADLINE_SECONDS = 12
WRITES = ("create", "update", "patch", "delete")


class Replica(Controller):
    """The controller, its requests marked with the replica's name."""

    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(settings)
        self.name = name
        self.user_agent = f"{USER_AGENT} {name}"

    async def client(self) -> Client:
        client = await super().client()
        client._headers["User-Agent"] = self.user_agent  # before its session is made
        return client


class PauseLog(logging.Handler):
    """When kopf's peering paused an operator of this process (only the standby does)."""

    def __init__(self) -> None:
        super().__init__()
        self.paused_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.paused_at is None and record.getMessage().startswith("Pausing operations"):
            self.paused_at = time.time()


def replica(cluster: Cluster, name: str, priority: int) -> AbstractContextManager[Replica]:
    """A controller peering in PEERING with ``priority``, until the block ends."""
    return run_controller(cluster, lambda s: Replica(s, name), peering=PEERING, priority=priority)


@pytest.fixture
def peering(cluster: Cluster) -> Iterator[str]:
    with kopf_peering(cluster, PEERING):
        yield PEERING


def writes_by(cluster: Cluster, namespace: str, agent: str, since: float) -> list[Any]:
    return [
        r
        for r in cluster.requests.filter(namespace=namespace, user_agent=agent, verb=WRITES)
        if r.started >= since
    ]


def status_or_event_by(cluster: Cluster, namespace: str, agent: str, since: float) -> list[Any]:
    return [
        r
        for r in writes_by(cluster, namespace, agent, since)
        if (r.resource, r.subresource) in {("taskruns", "status"), ("events", "")}
    ]


def deadline_events(runs: Runs) -> int:
    ours = [e for e in runs.events() if e.get("reportingComponent") == COMPONENT]
    return sum(1 for e in ours if e.get("reason") == "DeadlineExceeded")


def test_a_standby_does_not_act_on_the_timers_it_holds(
    cluster: Cluster, kube_ns: str, runs: Runs, peering: str
) -> None:
    assert cluster.requests is not None  # skips where nobody counts them: who wrote is the point
    pauses = PauseLog()
    kopf_log = logging.getLogger("kopf")
    level = kopf_log.level
    kopf_log.setLevel(logging.INFO)  # kopf says "Pausing operations ..." at INFO
    kopf_log.addHandler(pauses)
    try:
        with replica(cluster, "standby", priority=1) as standby:
            created = time.time()
            runs.create("deadline", {"runSeconds": 120}, activeDeadlineSeconds=DEADLINE_SECONDS)
            runs.wait_status("deadline", lambda s: s.get("phase") == "Running", timeout=10)
            assert runs.pod_creates() == 1
            with replica(cluster, "active", priority=100) as active:
                poll(lambda: pauses.paused_at is not None, 15, "kopf to pause the standby")
                paused_at = pauses.paused_at
                assert paused_at is not None
                assert paused_at < created + DEADLINE_SECONDS - 1, (
                    "the standby paused after the deadline: nothing left to show"
                )
                status = runs.wait_finished("deadline", timeout=DEADLINE_SECONDS + 10)
                assert status.get("reason") == "DeadlineExceeded", status
                # Both timers come due at the same moment; give the standby's reconcile
                # the time it would take to write.
                stays(
                    lambda: not writes_by(cluster, kube_ns, standby.user_agent, paused_at),
                    3.0,
                    "no write by the standby",
                )
                mine = writes_by(cluster, kube_ns, active.user_agent, paused_at)
                kinds = {(r.verb, r.resource, r.subresource) for r in mine}
                assert ("patch", "taskruns", "status") in kinds, kinds
                assert ("create", "events", "") in kinds, kinds
                # The standby's timer fired into its paused queue: the key waits there.
                assert len(standby._queue) == 1
                assert deadline_events(runs) == 1
            # The active replica stopped: the standby resumes, lists again, and only then
            # runs the key it held, on the TaskRun as it is now (finished by the other).
            poll(
                lambda: len(standby._queue) == 0 and not standby._queue.workers,
                30,
                "the standby to run the key it held",
            )
            stays(
                lambda: not status_or_event_by(cluster, kube_ns, standby.user_agent, paused_at),
                2.0,
                "no status write or Event by the former standby",
            )
            assert deadline_events(runs) == 1
    finally:
        kopf_log.removeHandler(pauses)
        kopf_log.setLevel(level)
