"""The controller's watch caches and per-TaskRun scheduling, without a cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.config import Settings
from controller.handlers import Controller


def taskrun(rv: str, phase: str | None = None, uid: str = "u1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "t", "namespace": "ns", "uid": uid, "resourceVersion": rv}
    }
    if phase:
        body["status"] = {"phase": phase}
    return body


def pod(name: str, rv: str, owner: str = "t") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"pod-{name}",
            "resourceVersion": rv,
            "ownerReferences": [{"kind": "TaskRun", "name": owner, "controller": True}],
        }
    }


@pytest.fixture
async def recorded(monkeypatch) -> tuple[Controller, list[tuple[str, str]]]:
    controller = Controller(Settings(metrics_port=0, health_port=0))
    seen: list[tuple[str, str]] = []

    async def reconcile(key):
        seen.append(key)
        await asyncio.sleep(0)

    monkeypatch.setattr(controller, "reconcile", reconcile)
    return controller, seen


async def settle(controller: Controller) -> None:
    await controller.drained()


async def test_an_older_event_does_not_replace_our_newer_write(recorded):
    controller, _ = recorded
    controller.on_taskrun(None, taskrun("10", "Running"))
    controller.on_taskrun("MODIFIED", taskrun("9", "Pending"))
    assert controller.cache.taskruns[("ns", "t")]["status"]["phase"] == "Running"
    controller.on_taskrun("MODIFIED", taskrun("11", "Succeeded"))
    assert controller.cache.taskruns[("ns", "t")]["status"]["phase"] == "Succeeded"
    # a TaskRun recreated with the same name starts over, whatever its resourceVersion
    controller.on_taskrun("ADDED", taskrun("3", uid="u2"))
    assert controller.cache.taskruns[("ns", "t")]["metadata"]["uid"] == "u2"
    await settle(controller)


async def test_a_burst_of_events_collapses_into_few_reconciles(recorded):
    controller, seen = recorded
    for rv in range(1, 20):
        controller.on_taskrun("MODIFIED", taskrun(str(rv)))
    await settle(controller)
    assert 1 <= len(seen) <= 2
    assert set(seen) == {("ns", "t")}


async def test_pod_events_reconcile_their_owner_and_deleted_pods_leave_the_cache(recorded):
    controller, seen = recorded
    controller.on_pod(None, pod("t-1", "5"))
    await settle(controller)
    assert seen == [("ns", "t")]
    assert ("ns", "t-1") in controller.cache.pods
    controller.on_pod("DELETED", pod("t-1", "6"))
    await settle(controller)
    assert ("ns", "t-1") not in controller.cache.pods


async def test_a_deleted_taskrun_is_forgotten(recorded):
    controller, _ = recorded
    controller.on_taskrun(None, taskrun("1", "Running"))
    controller.on_taskrun("DELETED", taskrun("2", "Running"))
    await settle(controller)
    assert ("ns", "t") not in controller.cache.taskruns


async def test_the_echo_of_our_own_write_is_not_reconciled_again(recorded):
    controller, seen = recorded
    # What a status patch's response put in the cache ...
    controller.cache.taskruns[("ns", "t")] = taskrun("10", "Running")
    controller.cache.pods[("ns", "t-1")] = pod("t-1", "7")
    # ... comes back on the watches: the same object at the same version.
    controller.on_taskrun("MODIFIED", taskrun("10", "Running"))
    controller.on_pod("ADDED", pod("t-1", "7"))
    await settle(controller)
    assert seen == []
    # A newer version, or the same version of another object, is news.
    controller.on_taskrun("MODIFIED", taskrun("11", "Succeeded"))
    await settle(controller)
    controller.on_taskrun("ADDED", taskrun("11", uid="u2"))
    await settle(controller)
    controller.on_pod("MODIFIED", pod("t-1", "8"))
    await settle(controller)
    assert seen == [("ns", "t")] * 3


async def test_many_keys_share_at_most_max_workers_tasks(recorded):
    controller, seen = recorded
    for i in range(200):
        controller.on_taskrun(
            None,
            {
                **taskrun("1"),
                "metadata": {
                    "name": f"t{i}",
                    "namespace": "ns",
                    "uid": f"u{i}",
                    "resourceVersion": "1",
                },
            },
        )
    assert len(controller._queue.workers) == controller.settings.max_workers
    await settle(controller)
    assert sorted(seen) == sorted(("ns", f"t{i}") for i in range(200))
    assert not controller._queue.workers and len(controller._queue) == 0


async def test_a_pod_event_comes_before_new_runs(monkeypatch):
    """A finished pod's status does not wait behind the TaskRuns offered before it."""
    controller = Controller(Settings(metrics_port=0, health_port=0, max_workers=1))
    seen: list[tuple[str, str]] = []

    async def reconcile(key):
        seen.append(key)

    monkeypatch.setattr(controller, "reconcile", reconcile)
    for i in range(5):
        meta = {**taskrun("1")["metadata"], "name": f"new{i}", "uid": f"n{i}"}
        controller.on_taskrun(None, {**taskrun("1"), "metadata": meta})
    controller.on_pod("MODIFIED", pod("started-1", "5", owner="started"))
    await settle(controller)
    assert seen == [("ns", "started")] + [("ns", f"new{i}") for i in range(5)]
