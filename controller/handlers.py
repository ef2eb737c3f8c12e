"""kopf handlers: thin glue from watch events to ``core.policies.decide`` and back to the API.

Only ``@kopf.on.event`` handlers are used: they store nothing on the objects, so the API
writes per TaskRun are the controller's own (pod create, status patches, pod delete).
Deadlines are per-TaskRun asyncio timers instead of kopf's requeueing, which would write
progress annotations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import kopf

from controller import eventpath, metrics
from controller.cache import ObjectCache, owner_name
from controller.config import Settings
from controller.core.actions import CoreSettings, Decision, Observation
from controller.core.clock import Clock, SystemClock
from controller.core.policies import decide
from controller.executor import Executor, TaskRunGone
from controller.gauges import PhaseGauges
from controller.k8s import REQUEST_TIMEOUT_SECONDS, ApiError, Client
from controller.k8s import login as k8s_login
from controller.workqueue import Key, Lane, PauseGate, WorkQueue
from taskrun.api import GROUP, LABEL_MANAGED_BY, MANAGED_BY, PLURAL, VERSION

log = logging.getLogger(__name__)

# Reads then writes then re-reads: a pass needs at most a few rounds of decide().
MAX_ROUNDS = 6


class Controller:
    """The watch caches, the work queue, and the per-TaskRun reconcile: observe, decide, act."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.credentials: Any = None
        self._client: Client | None = None
        self._core: CoreSettings | None = None
        self._core_lock = asyncio.Lock()
        self.cache = ObjectCache()
        self._gauges = PhaseGauges()
        self._executor = Executor(
            self.client,
            self.cache,
            self._gauges,
            self.clock,
            # a refused pod delete: decide again, in the pod lane as for the pod's own events
            lambda key: self._queue.trigger(key, Lane.POD),
        )
        self._queue = WorkQueue(
            # looked up at each call: tests replace ``reconcile`` on the instance
            lambda key: self.reconcile(key),
            self._reconcile_failed,
            settings.max_workers,
            self.clock,
        )

    # --- plumbing --------------------------------------------------------------------------

    async def client(self) -> Client:
        """The API client, made with the credentials kopf's login gave, again when kopf
        logs in anew (an exec plugin's token expired)."""
        if self._client is None or self._client.credentials is not self.credentials:
            if self.credentials is None:
                raise RuntimeError("not logged in yet")
            old, self._client = self._client, Client(self.credentials)
            if old is not None:
                # Reconciles in flight may still use it: close it once they are done.
                loop = asyncio.get_running_loop()
                loop.call_later(REQUEST_TIMEOUT_SECONDS, lambda: loop.create_task(old.close()))
        return self._client

    async def core(self) -> CoreSettings:
        """The decision settings; asks the server's version once for ``--xcom-mode=auto``."""
        if self._core is None:
            async with self._core_lock:  # the first reconciles start together
                if self._core is None:
                    version = None
                    if self.settings.xcom_mode == "auto":
                        version = await (await self.client()).server_version()
                    self._core = self.settings.core(version)
                    log.info("result sidecar mode: %s", self._core.pod.xcom_mode)
        return self._core

    async def close(self) -> None:
        """Stop timers and reconciles, close the client session."""
        await self._executor.disposer.close()
        await self._queue.close()
        await self._executor.events.close()
        if self._client is not None:
            await self._client.close()
            self._client = None

    # --- watch events ----------------------------------------------------------------------

    def on_taskrun(
        self, event_type: str | None, body: Mapping[str, Any], *, owned: bool = False
    ) -> None:
        """A watch event of a TaskRun: cache it and reconcile it.

        ``owned``: ``body`` is a fresh dict nobody else changes (kopf's raw watch event), so
        it is cached as it is instead of copied.
        """
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            self._forget_taskrun(key)
            return
        if not self.cache.seen_taskrun(key, body, owned):
            # The echo of our own status write, already cached from its response and
            # reconciled since: nothing new to decide on.
            return
        self._gauges.count(key, (self.cache.taskruns[key].get("status") or {}).get("phase"))
        self.trigger(key)

    def _forget_taskrun(self, key: Key) -> None:
        """The TaskRun is gone (its DELETED, or NotFound on our write to it): drop what
        is kept of it. Its pods are the garbage collector's (ownerReferences)."""
        self.cache.forget_taskrun(key)
        self._executor.forget_taskrun(key)
        self._gauges.count(key, None)
        self._queue.forget(key)

    def on_pod(
        self, event_type: str | None, body: Mapping[str, Any], *, owned: bool = False
    ) -> None:
        """A watch event of one of our pods: cache it and reconcile its TaskRun, in the pod
        lane: a run already started comes before the new ones (controller/workqueue.py)."""
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace", "")
        pod_key = (namespace, meta.get("name", ""))
        if event_type == "DELETED":
            self.cache.forget_pod(pod_key, meta.get("uid", ""))
            self._executor.forget_pod(meta.get("uid", ""))
        else:
            replaced = self.cache.replaced_pod(pod_key, body)
            if replaced is not None:
                # Recreated under its name while the watch was down: the old pod's DELETED
                # never came (a list shows no deletions, and the Replace after it passes
                # over a name it listed), so it is given here: the per-uid memories go, and
                # its TaskRun hears of it.
                log.info("pod %s/%s was recreated while the watch was down", *pod_key)
                self.on_pod("DELETED", replaced)
                metrics.observe_relist_deletions("pod", 1)
            if not self.cache.seen_pod(pod_key, body, owned):
                return  # the echo of our own create, cached from its response
        owner = owner_name(body)
        if owner is not None:
            self._queue.trigger((namespace, owner), Lane.POD)

    # --- scheduling ------------------------------------------------------------------------

    def trigger(self, key: Key) -> None:
        """Reconcile ``key`` soon; bursts of triggers collapse into one more pass."""
        self._queue.trigger(key)

    def pause_with(self, gate: PauseGate) -> None:
        """Reconcile nothing while ``gate`` is on: kopf's pause of the operator (a peer of
        higher priority is active) and the re-lists after it (eventpath.ResumeGate)."""
        self._queue.pause_with(gate)

    async def drained(self) -> None:
        """Wait until nothing is being reconciled and, unless paused, nothing is queued, and
        the Events recorded and the pod deletes handed off are sent (for tests)."""
        await self._queue.drained()
        await self._executor.events.flushed()
        await self._executor.disposer.flushed()

    def _reconcile_failed(self, key: Key, err: Exception, delay: float) -> None:
        kind = "api" if isinstance(err, ApiError) else type(err).__name__
        metrics.observe_reconcile_error(kind if kind == "api" else "internal")
        log.warning("reconcile %s/%s failed (%s); again in %.0fs", *key, err, delay)

    # --- one pass: observe, decide, act ---------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        """Read (from the watch caches), decide, act; repeat until nothing is left to do."""
        taskrun = self.cache.taskruns.get(key)
        if taskrun is None:
            return
        core = await self.core()
        pod, conflict = await self._executor.pod_of(taskrun)
        obs = Observation(
            taskrun=taskrun,
            pod=pod,
            now=self.clock.now(),
            create_error=conflict,
            other_pods=self._executor.other_pods(taskrun),
        )
        decision = Decision()
        try:
            for _ in range(MAX_ROUNDS):
                decision = decide(obs, core)
                if decision.reads:
                    gathered = await self._executor.gather(key, obs, decision, core)
                    obs = replace(obs, gathered=gathered)
                    continue
                obs, again = await self._executor.act(key, obs, decision)
                if not again:
                    break
        except TaskRunGone as gone:
            # The API server's word that the run is deleted, ahead of its DELETED: done as
            # at that event, with no error back-off (retries would only be answered 404).
            log.info("TaskRun %s/%s is gone (%s): forgotten", *key, gone)
            cached = self.cache.taskruns.get(key)
            # A run of the same name made since (its ADDED already cached) is not this one.
            if cached is None or _uid(cached) == _uid(taskrun):
                self._forget_taskrun(key)
            return
        self._executor.done(key)
        self._queue.wake_at(key, decision.wake_at)


def _uid(obj: Mapping[str, Any]) -> Any:
    return (obj.get("metadata") or {}).get("uid")


def _raw_object(event: Any, body: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The watch event's own object when kopf hands it over, else kopf's body view.

    kopf parses every watch line into a fresh dict and never changes it afterwards, so the
    controller may keep it without the deep copy a live ``kopf.Body`` view needs.
    """
    raw = event.get("object") if isinstance(event, Mapping) else None
    if type(raw) is dict and raw.get("metadata", {}).get("uid") == body.get("metadata", {}).get(
        "uid"
    ):
        return raw, True
    return body, False


def register(
    controller: Controller, registry: kopf.OperatorRegistry | None = None
) -> kopf.OperatorRegistry:
    """Register the controller's handlers on ``registry`` (a new one by default)."""
    registry = registry if registry is not None else kopf.OperatorRegistry()

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = k8s_login(**kwargs)
        if info is not None:
            controller.credentials = info
        return info

    @kopf.on.event(GROUP, VERSION, PLURAL, id="taskrun", registry=registry)
    async def taskrun_event(
        type: str | None, body: kopf.Body, event: kopf.RawEvent, **_: Any
    ) -> None:
        raw, owned = _raw_object(event, body)
        controller.on_taskrun(type, raw, owned=owned)

    @kopf.on.event(
        "",
        "v1",
        "pods",
        labels={LABEL_MANAGED_BY: MANAGED_BY},
        id="pod",
        registry=registry,
    )
    async def pod_event(type: str | None, body: kopf.Body, event: kopf.RawEvent, **_: Any) -> None:
        raw, owned = _raw_object(event, body)
        controller.on_pod(type, raw, owned=owned)

    # kopf still opens, re-lists and pauses both watches; their events skip its per-event
    # machinery (controller/eventpath.py), and each list ends with a DELETED for what the
    # caches hold but the list did not show (deleted while the stream was down). The handlers
    # above are the fallback. kopf's pause
    # toggle, which it hands to the watchers only, reaches the work queue the same way.
    eventpath.take_over(
        registry,
        {
            ("", "pods"): eventpath.Route(
                controller.on_pod, {LABEL_MANAGED_BY: MANAGED_BY}, controller.cache.pods_in, "pod"
            ),
            (GROUP, PLURAL): eventpath.Route(
                controller.on_taskrun, cached=controller.cache.taskruns_in, kind="taskrun"
            ),
        },
        paused_by=controller.pause_with,
    )

    @kopf.on.cleanup(id="close", registry=registry)
    async def cleanup(**_: Any) -> None:
        await controller.close()

    return registry


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """No diff base: the controller has only ``on.event`` handlers, which need no diff.

    kopf builds a deep-copied "essence" of every object on every watch event to detect
    changes for on.create / on.update / on.resume handlers; with none registered the
    essence is never used and its copy was a quarter of the controller's CPU.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def configure(kopf_settings: kopf.OperatorSettings) -> kopf.OperatorSettings:
    """kopf settings that keep kopf from writing to the API on its own."""
    # Our own Events carry the transitions; kopf's per-handler events would double them.
    kopf_settings.posting.enabled = False
    kopf_settings.watching.server_timeout = 300
    # List in pages, as client-go's reflectors do: a start-up list of 10,000 TaskRuns is
    # never one response in memory at once.
    kopf_settings.watching.chunk_size = 500
    # kopf keeps a worker task per object until it has seen no event for this long; the
    # handlers only hand events to the work queue, so a short wait is enough, and a start-up
    # list of 10,000 TaskRuns does not hold 10,000 idle workers for 5 s (kopf's default).
    kopf_settings.queueing.idle_timeout = 0.5
    kopf_settings.persistence.diffbase_storage = NoDiffBase()
    return kopf_settings
