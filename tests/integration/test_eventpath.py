"""controller/eventpath.py: watch events skip kopf's per-event machinery, and kopf's peering
pause still holds them back.

The controller runs in a KopfRunner thread with mandatory peering against a peering
object in which a live peer of higher priority heartbeats (written by the test): kopf
pauses the operator. A pod with the controller's label made meanwhile must reach the
controller only after the peer is gone and kopf resumes; a path that watched on its own
would deliver it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf._cogs.clients import watching as kopf_watching
from kopf._core.reactor import processing

from controller import eventpath
from controller.config import Settings
from controller.core.actions import CreatePod, Decision, Observation
from controller.handlers import Controller, register
from controller.metrics import METRICS
from taskrun.api import LABEL_MANAGED_BY, MANAGED_BY
from testcluster import Cluster
from tests.integration.conftest import (
    CONTROLLER_AGENT,
    Runs,
    kopf_peering,
    poll,
    run_controller,
    stays,
)

PEERING = "eventpath-test"
OTHER = "another-replica@elsewhere"


class Recording(Controller):
    """The controller, noting when each object's events reached it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def on_pod(self, event_type: str | None, body: Any, *, owned: bool = False) -> None:
        with self.lock:
            self.seen.setdefault(body["metadata"]["name"], time.monotonic())
        self.loop = asyncio.get_running_loop()
        super().on_pod(event_type, body, owned=owned)

    def on_taskrun(self, event_type: str | None, body: Any, *, owned: bool = False) -> None:
        with self.lock:
            self.seen.setdefault(body["metadata"]["name"], time.monotonic())
        self.loop = asyncio.get_running_loop()
        super().on_taskrun(event_type, body, owned=owned)


class StreamPauses:
    """kopf's watch streams that closed for a pause and wait for the resume."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paused: set[str] = set()
        kopf_block = kopf_watching.streaming_block

        @contextlib.asynccontextmanager
        async def streaming_block(*, resource: Any, operator_paused: Any = None, **kw: Any) -> Any:
            if operator_paused is not None and operator_paused.is_on():
                self.paused.add(resource.plural)
            async with kopf_block(resource=resource, operator_paused=operator_paused, **kw) as w:
                self.paused.discard(resource.plural)
                yield w

        monkeypatch.setattr(kopf_watching, "streaming_block", streaming_block)


def labelled_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def live_peer(priority: int) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).isoformat()
    return {"priority": priority, "lifetime": 600, "lastseen": now}


@pytest.fixture
def peering(cluster: Cluster) -> Iterator[str]:
    """A ClusterKopfPeering in which another replica of higher priority is alive."""
    with kopf_peering(cluster, PEERING):
        cluster.patch("clusterkopfpeerings", None, PEERING, {"status": {OTHER: live_peer(100)}})
        yield PEERING


def test_no_event_reaches_the_controller_while_kopf_pauses_it(
    cluster: Cluster, kube_ns: str, peering: str
) -> None:
    with run_controller(cluster, Recording, peering=peering, priority=1, await_lists=False) as c:
        cluster.create("pods", kube_ns, labelled_pod("made-while-paused"))
        # Nothing to await: the paused operator does nothing. kopf lists within a second
        # when it runs (test_events_take_the_light_path sees its pods well within that).
        stays(lambda: "made-while-paused" not in c.seen, 2.0, "no pod event while paused")
        resumed = time.monotonic()
        cluster.patch("clusterkopfpeerings", None, peering, {"status": {OTHER: None}})
        poll(lambda: "made-while-paused" in c.seen, 20, "the pod's event after the resume")
        assert c.seen["made-while-paused"] > resumed


def test_events_take_the_light_path(
    cluster: Cluster, kube_ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf's processing sees no pod or TaskRun event: the swap applied (a kopf upgrade that
    moved its watcher makes this fail, not the controller silently slower)."""
    processed: list[str] = []
    kopf_processing = processing.process_resource_event

    async def spy(*, resource: Any, **kwargs: Any) -> Any:
        processed.append(resource.plural)
        return await kopf_processing(resource=resource, **kwargs)

    monkeypatch.setattr(processing, "process_resource_event", spy)
    with run_controller(cluster, Recording) as c:
        cluster.create("pods", kube_ns, labelled_pod("seen-lightly"))
        cluster.create("pods", kube_ns, {**labelled_pod("not-ours"), "metadata": {"name": "x"}})
        poll(lambda: "seen-lightly" in c.seen, 10, "the labelled pod's event")
        assert "x" not in c.seen, "a pod without the controller's label reached it"
    assert not {"pods", "taskruns"} & set(processed), processed


def test_route_for_leaves_kopfs_own_watches_alone() -> None:
    import functools

    controller = Controller(Settings(metrics_port=0, health_port=0))
    registry = register(controller)

    class Res:
        def __init__(self, group: str, plural: str) -> None:
            self.group, self.plural = group, plural

    ours = functools.partial(processing.process_resource_event, registry=registry)
    pods, crds = Res("", "pods"), Res("apiextensions.k8s.io", "customresourcedefinitions")
    assert eventpath.route_for(ours, pods) is not None
    assert eventpath.route_for(ours, Res("taskrun.dev", "taskruns")) is not None
    assert eventpath.route_for(ours, crds) is None
    # kopf's resource observer passes the registry to another processor.
    observer = functools.partial(Path, registry=registry)
    assert eventpath.route_for(observer, pods) is None
    other = functools.partial(processing.process_resource_event, registry=object())
    assert eventpath.route_for(other, pods) is None


def _pod(rv: str, phase: str) -> dict[str, Any]:
    meta = {"name": "t-1", "namespace": "ns", "uid": "pod-u", "resourceVersion": rv}
    return {"metadata": meta, "status": {"phase": phase}}


@pytest.mark.parametrize("request_first", [False, True])
async def test_a_pod_event_during_the_create_is_not_overwritten_by_its_response(
    request_first: bool,
) -> None:
    """Events come as soon as the stream has them, so the watch may bring the pod's later
    versions (here: it already ran and ended) before the create's response is read; the
    response must not put the older version back in the cache, or the run waits for its
    next timer (a real-API-server burst showed 120 s) instead of finishing."""
    controller = Controller(Settings(metrics_port=0, health_port=0))
    finished = _pod("7", "Succeeded")

    class Client:
        credentials = controller.credentials = object()

        async def create_pod(self, namespace: str, pod: Any, owner_uid: str) -> dict[str, Any]:
            if not request_first:
                controller.on_pod("MODIFIED", finished, owned=True)
            return _pod("5", "Pending")

        async def close(self) -> None:
            pass

    controller._client = Client()  # type: ignore[assignment]
    taskrun = {"metadata": {"name": "t", "namespace": "ns", "uid": "u"}}
    obs = Observation(taskrun=taskrun, pod=None, now=controller.clock.now())
    decision = Decision(actions=[CreatePod(pod={}, attempt=1)])
    obs, again = await controller._executor.act(("ns", "t"), obs, decision)
    if request_first:
        controller.on_pod("MODIFIED", finished, owned=True)
    assert again
    assert controller.cache.pods[("ns", "t-1")]["metadata"]["resourceVersion"] == "7"
    if not request_first:
        assert obs.pod is not None and obs.pod["status"]["phase"] == "Succeeded"
    await controller.close()


async def test_the_watchers_pause_toggle_holds_the_work_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf hands its operator_paused toggle set to the watchers only; the swapped watcher
    gives it to the controller, whose queue then reconciles nothing while it is on."""
    import functools

    import kopf
    from kopf._cogs.aiokits import aiotoggles

    controller = Controller(Settings(metrics_port=0, health_port=0))
    reconciled: list[Any] = []

    async def reconcile(key: Any) -> None:
        reconciled.append(key)

    monkeypatch.setattr(controller, "reconcile", reconcile)
    registry = register(controller)
    operator_paused = aiotoggles.ToggleSet(any)
    peer = await operator_paused.make_toggle(True, name="a peer of higher priority")

    class Res:
        group, plural = "", "pods"

    watcher = eventpath._watcher(
        processor=functools.partial(processing.process_resource_event, registry=registry),
        resource=Res(),
        namespace=None,
        settings=kopf.OperatorSettings(),
        operator_paused=operator_paused,
    )
    watcher.close()  # not run: only its hand-over at the start matters here
    controller.on_pod(
        "MODIFIED",
        {
            **_pod("3", "Succeeded"),
            "metadata": {
                **_pod("3", "Succeeded")["metadata"],
                "ownerReferences": [{"kind": "TaskRun", "name": "t", "controller": True}],
            },
        },
    )
    await controller.drained()
    assert reconciled == []
    await peer.turn_to(False)
    for _ in range(20):
        await asyncio.sleep(0)
    await controller.drained()
    assert reconciled == [("ns", "t")]
    await controller.close()


def test_what_is_deleted_during_a_pause_leaves_the_caches_at_the_relist(
    cluster: Cluster, kube_ns: str, peering: str, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list shows no deletions: the objects deleted while the streams were closed get a
    DELETED from the re-list (client-go's Replace), before the work queue resumes."""
    pauses = StreamPauses(monkeypatch)
    counted = relist_deletions()
    with run_controller(cluster, Recording, peering=peering, priority=1, await_lists=False) as c:
        cluster.patch("clusterkopfpeerings", None, peering, {"status": {OTHER: None}})
        cluster.create("pods", kube_ns, labelled_pod("deleted-while-paused"))
        cluster.create("pods", kube_ns, labelled_pod("kept"))
        runs.create("run-deleted-while-paused")
        pods = c.cache.pods
        poll(
            lambda: {(kube_ns, "deleted-while-paused"), (kube_ns, "kept")} <= set(pods),
            20,
            "both pods in the cache",
        )
        run_key = (kube_ns, "run-deleted-while-paused")
        poll(lambda: run_key in c.cache.taskruns, 20, "the TaskRun in the cache")

        cluster.patch("clusterkopfpeerings", None, peering, {"status": {OTHER: live_peer(100)}})
        poll(
            lambda: {"pods", "taskruns"} <= pauses.paused,
            20,
            f"both watch streams paused ({pauses.paused})",
        )
        cluster.delete("pods", kube_ns, "deleted-while-paused", grace_period=0)
        runs.cluster.delete("taskruns", kube_ns, "run-deleted-while-paused")
        poll(lambda: runs.get("run-deleted-while-paused") is None, 20, "the TaskRun gone")
        poll(lambda: runs.pod("deleted-while-paused") is None, 20, "the pod gone")
        assert (kube_ns, "deleted-while-paused") in pods, "deleted before the pause"
        assert run_key in c.cache.taskruns, "deleted before the pause"

        resumed = time.time()
        cluster.patch("clusterkopfpeerings", None, peering, {"status": {OTHER: None}})
        poll(
            lambda: (kube_ns, "deleted-while-paused") not in pods,
            20,
            "the pod deleted during the pause to leave the cache after the re-list",
        )
        poll(
            lambda: run_key not in c.cache.taskruns,
            20,
            "the TaskRun deleted during the pause to leave the cache after the re-list",
        )
        assert (kube_ns, "kept") in pods
        # Once the queue is through, nothing was asked about the deleted run since.
        assert c.loop is not None
        asyncio.run_coroutine_threadsafe(c.drained(), c.loop).result(20)
        about_it = [
            r
            for r in cluster.requests.filter(namespace=kube_ns, user_agent=CONTROLLER_AGENT)
            if r.started >= resumed and r.name.startswith("run-deleted-while-paused")
        ]
        assert about_it == []
        # Other namespaces' objects may have gone during the pause too: at least ours.
        now = relist_deletions()
        assert now["taskrun"] >= counted["taskrun"] + 1, (counted, now)
        assert now["pod"] >= counted["pod"] + 1, (counted, now)


def relist_deletions() -> dict[str, float]:
    """taskrun_relist_deletions_total by kind (the controller runs in this process)."""
    get = METRICS.registry.get_sample_value
    return {
        kind: get("taskrun_relist_deletions_total", {"kind": kind}) or 0.0
        for kind in ("taskrun", "pod")
    }


def test_a_pod_recreated_during_a_pause_takes_the_old_pods_memories_with_it(
    cluster: Cluster, kube_ns: str, peering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-list shows the pod's name with another uid, so the Replace passes over it; the
    old uid's memories (here: a deletion we asked for) go as at its DELETED, which never came."""
    pauses = StreamPauses(monkeypatch)
    counted = relist_deletions()
    with run_controller(cluster, Recording, peering=peering, priority=1, await_lists=False) as c:
        cluster.patch("clusterkopfpeerings", None, peering, {"status": {OTHER: None}})
        key = (kube_ns, "recreated")
        old_uid = cluster.create("pods", kube_ns, labelled_pod("recreated"))["metadata"]["uid"]
        pods = c.cache.pods
        poll(lambda: key in pods, 20, "the pod in the cache")
        assert c.loop is not None
        # What the executor notes once it asked to delete the pod; the DELETE itself would
        # end the pod before the pause.
        c.loop.call_soon_threadsafe(c.cache.deleting, old_uid)
        poll(lambda: old_uid in c.cache._deleting, 5, "the old pod noted as being deleted")

        cluster.patch("clusterkopfpeerings", None, peering, {"status": {OTHER: live_peer(100)}})
        poll(lambda: "pods" in pauses.paused, 20, f"the pods stream paused ({pauses.paused})")
        cluster.delete("pods", kube_ns, "recreated", grace_period=0)
        poll(lambda: cluster.get_or_none("pods", kube_ns, "recreated") is None, 20, "pod gone")
        new_uid = cluster.create("pods", kube_ns, labelled_pod("recreated"))["metadata"]["uid"]
        assert new_uid != old_uid
        assert pods[key]["metadata"]["uid"] == old_uid, "the new pod seen during the pause"

        cluster.patch("clusterkopfpeerings", None, peering, {"status": {OTHER: None}})
        poll(
            lambda: (pods.get(key) or {}).get("metadata", {}).get("uid") == new_uid,
            20,
            "the new pod cached from the re-list",
        )
        assert old_uid not in c.cache._deleting
        assert c.cache.pod(key) == pods[key], "the new pod is not shown as being deleted"
        assert relist_deletions()["pod"] >= counted["pod"] + 1


@pytest.mark.devcluster_only("forces 410 Gone on resumed watches (devcluster.faults)")
def test_a_taskrun_deleted_while_its_watch_is_gone_is_dropped_at_the_relist(
    cluster: Cluster, kube_ns: str, runs: Runs
) -> None:
    """A watch answered 410 Gone lists again; what was deleted meanwhile leaves the cache at
    that list (the Replace), and is not reconciled again (no 404s on and on). A plain run
    beforehand counts no re-list deletion.

    The run is deleted orphaning its pod: the garbage collector's delete of the pod would
    reconcile the run first, and its status write answered 404 forgets it before the list
    (test_e2e_taskrun_gone.py), leaving the re-list nothing to drop."""
    dev = cluster.devcluster
    faults = dev.faults
    # kopf's own list and watch requests only: the controller's writes go through.
    faults.user_agent_prefix = "kopf/"
    faults.resources = frozenset({"taskruns"})
    # Every stream ends soon, so that the switch to 410 below reaches the open one.
    faults.drop_watches_every = 0.5
    counted = relist_deletions()
    try:
        with run_controller(cluster, Recording) as c:
            runs.create("plain", scenario={"exitCode": 0})
            runs.wait_finished("plain", 20)
            assert c.loop is not None
            asyncio.run_coroutine_threadsafe(c.drained(), c.loop).result(20)
            assert relist_deletions() == counted, "a plain run deleted nothing behind a watch"

            name = "gone-while-410"
            runs.create(name, scenario={"runSeconds": 300})
            runs.wait_status(name, lambda s: s.get("phase") == "Running", 20)
            key = (kube_ns, name)
            assert key in c.cache.taskruns

            broken = time.time()
            faults.force_410_on_resume = True
            # A list begun after the switch: the stream open before it has ended, and each
            # resumed watch since is answered 410, so no watch event shows the deletion.
            poll(
                lambda: any(
                    r.verb == "list" and r.resource == "taskruns" and r.started > broken
                    for r in cluster.requests.filter(user_agent="kopf/")
                ),
                20,
                "kopf to list the TaskRuns again after a 410",
            )
            deleted = time.time()
            orphan = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}
            path = cluster.resource("taskruns").path(kube_ns, name)
            cluster.request("DELETE", path, body=orphan)
            poll(lambda: runs.get(name) is None, 20, "the TaskRun gone")
            poll(lambda: key not in c.cache.taskruns, 20, "the TaskRun to leave the cache")
            asyncio.run_coroutine_threadsafe(c.drained(), c.loop).result(20)
            assert relist_deletions()["taskrun"] >= counted["taskrun"] + 1

            def about_it() -> list[Any]:
                return [
                    r
                    for r in cluster.requests.filter(namespace=kube_ns, user_agent=CONTROLLER_AGENT)
                    if r.started >= deleted and r.name.startswith(name)
                ]

            # Its orphaned pod names no owner, so nothing reconciles the run before the
            # re-list drops it, and nothing asks about it after.
            assert about_it() == []
            stays(lambda: about_it() == [], 3, "no request about the deleted run")
    finally:
        faults.clear()
