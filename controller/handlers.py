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
from controller.config import Settings
from controller.core import budget, naming, results
from controller.core.actions import (
    CoreSettings,
    CreatePod,
    Decision,
    DeletePod,
    DeleteTaskRun,
    EmitEvent,
    Gathered,
    Observation,
    PatchStatus,
    ReadEvents,
    ReadLogTail,
    ReadResult,
    StopSidecar,
)
from controller.core.attempt import attempt_pod_name
from controller.core.clock import Clock, SystemClock, parse_optional
from controller.core.disposal import finished_view
from controller.core.policies import decide
from controller.core.refusals import create_can_heal, create_refusal
from controller.core.tails import LogTail
from controller.k8s import REQUEST_TIMEOUT_SECONDS, ApiError, Client, PodNameConflict, too_large
from controller.k8s import login as k8s_login
from controller.workqueue import Key, WorkQueue
from taskrun.api import (
    FINISHED_PHASES,
    GROUP,
    KIND,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    PLURAL,
    VERSION,
    Phase,
    Reason,
)

log = logging.getLogger(__name__)

# Reads then writes then re-reads: a pass needs at most a few rounds of decide().
MAX_ROUNDS = 6


class Controller:
    """The in-memory view of TaskRuns and their pods, and the per-TaskRun reconcile loops."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.credentials: Any = None
        self._client: Client | None = None
        self._core: CoreSettings | None = None
        self._core_lock = asyncio.Lock()
        # Finished TaskRuns are kept cut to what deciding on them reads (finished_view).
        self._taskruns: dict[Key, Mapping[str, Any]] = {}
        self._pods: dict[Key, dict[str, Any]] = {}
        self._queue = WorkQueue(
            # looked up at each call: tests replace ``reconcile`` on the instance
            lambda key: self.reconcile(key),
            self._reconcile_failed,
            settings.max_workers,
            self.clock,
        )
        # What was read at the end of an attempt (logs, result, events), by pod uid, kept
        # until a reconcile of the TaskRun completes: a failed status write is tried again
        # without reading every log (and the result) again.
        self._gathered: dict[Key, tuple[str | None, Gathered]] = {}
        # Pods we asked to delete whose DELETED event has not come yet: events already in
        # flight still show them alive, and must not make us delete them twice.
        self._deleting: set[str] = set()
        # Pods whose exec-mode sidecar was sent its SIGINT: the pod shows the exit only
        # once the node has written it and the watch has brought it, and reconciles in
        # between (any event of the pod or run) must not send the kill again.
        self._stopped_sidecars: set[str] = set()
        # Phase of every known TaskRun, for the running / pending gauges.
        self._phases: dict[Key, str | None] = {}
        self._gauges: dict[str | None, dict[str, int]] = {"Running": {}, "Pending": {}}

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
        await self._queue.close()
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
            self._taskruns.pop(key, None)
            self._gathered.pop(key, None)
            self._count_phase(key, None)
            self._queue.forget(key)
            return
        cached = self._taskruns.get(key)
        if _same_version(body, cached):
            # The echo of our own status write, already cached from its response and
            # reconciled since: nothing new to decide on.
            return
        if _newer(body, cached):
            self._taskruns[key] = _cacheable(body, owned)
            self._count_phase(key, (body.get("status") or {}).get("phase"))
        self.trigger(key)

    def _count_phase(self, key: Key, phase: str | None) -> None:
        old = self._phases.get(key)
        if old == phase:
            return
        if phase is None:
            self._phases.pop(key, None)
        else:
            self._phases[key] = phase
        namespace = key[0]
        if old in self._gauges:
            counts = self._gauges[old]
            counts[namespace] -= 1
            if not counts[namespace]:
                del counts[namespace]
        if phase in self._gauges:
            counts = self._gauges[phase]
            counts[namespace] = counts.get(namespace, 0) + 1
        if {old, phase} & set(self._gauges):
            metrics.set_counts(self._gauges["Running"], self._gauges["Pending"])

    def on_pod(
        self, event_type: str | None, body: Mapping[str, Any], *, owned: bool = False
    ) -> None:
        """A watch event of one of our pods: cache it and reconcile its TaskRun."""
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace", "")
        pod_key = (namespace, meta.get("name", ""))
        if event_type == "DELETED":
            self._pods.pop(pod_key, None)
            self._deleting.discard(meta.get("uid", ""))
            self._stopped_sidecars.discard(meta.get("uid", ""))
        else:
            cached = self._pods.get(pod_key)
            if _same_version(body, cached):
                return  # the echo of our own create, cached from its response
            if _newer(body, cached):
                self._pods[pod_key] = body if owned and type(body) is dict else _plain(body)
        owner = _owner_name(body)
        if owner is not None:
            self.trigger((namespace, owner))

    # --- scheduling ------------------------------------------------------------------------

    def trigger(self, key: Key) -> None:
        """Reconcile ``key`` soon; bursts of triggers collapse into one more pass."""
        self._queue.trigger(key)

    async def drained(self) -> None:
        """Wait until nothing is queued or being reconciled (for tests)."""
        await self._queue.drained()

    def _reconcile_failed(self, key: Key, err: Exception, delay: float) -> None:
        kind = "api" if isinstance(err, ApiError) else type(err).__name__
        metrics.observe_reconcile_error(kind if kind == "api" else "internal")
        log.warning("reconcile %s/%s failed (%s); again in %.0fs", *key, err, delay)

    # --- one pass: observe, decide, act ---------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        """Read (from the watch caches), decide, act; repeat until nothing is left to do."""
        taskrun = self._taskruns.get(key)
        if taskrun is None:
            return
        core = await self.core()
        pod, conflict = await self._pod_of(taskrun)
        obs = Observation(taskrun=taskrun, pod=pod, now=self.clock.now(), create_error=conflict)
        decision = Decision()
        for _ in range(MAX_ROUNDS):
            decision = decide(obs, core)
            if decision.reads:
                pod_uid = ((obs.pod or {}).get("metadata") or {}).get("uid")
                cached = self._gathered.get(key)
                if cached is not None and cached[0] == pod_uid:
                    gathered = cached[1]
                else:
                    gathered = await self._gather(obs, decision, core)
                    self._gathered[key] = (pod_uid, gathered)
                obs = replace(obs, gathered=gathered)
                continue
            obs, again = await self._act(key, obs, decision)
            if not again:
                break
        self._gathered.pop(key, None)
        self._queue.wake_at(key, decision.wake_at)

    async def _pod_of(
        self, taskrun: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, tuple[Reason, str] | None]:
        """The TaskRun's own pod of its current attempt, and a conflict when another has its name.

        A pod of that name that is not its own (``naming.owns``) is never handed to
        ``decide``: its status and logs are not read, it is not deleted.
        """
        meta = taskrun.get("metadata") or {}
        status = taskrun.get("status") or {}
        namespace = meta.get("namespace", "")
        phase = status.get("phase")
        pod_name = status.get("podName") if phase in FINISHED_PHASES else attempt_pod_name(taskrun)
        if not pod_name:
            return None, None
        pod = self._pods.get((namespace, pod_name))
        if pod is None and phase in ("Pending", "Running") and status.get("podName") == pod_name:
            # The watch may not have listed the pod yet (a restart): ask before declaring
            # it deleted.
            found = await (await self.client()).get_pod(namespace, pod_name)
            if found is not None:
                pod = self._cache_pod((namespace, pod_name), found)
        if pod is None:
            return None, None
        if not naming.owns(pod, meta.get("uid")):
            return None, (Reason.POD_NAME_CONFLICT, naming.conflict_message(pod, meta.get("uid")))
        pod_meta = pod.get("metadata") or {}
        if pod_meta.get("uid") in self._deleting and not pod_meta.get("deletionTimestamp"):
            pod = {**pod, "metadata": {**pod_meta, "deletionTimestamp": "requested"}}
        return pod, None

    def _cache_pod(self, key: Key, pod: dict[str, Any]) -> dict[str, Any]:
        """Cache a pod read or written by a request unless the watch has a later version."""
        if _newer(pod, self._pods.get(key)):
            self._pods[key] = pod
        return self._pods[key]

    async def _gather(self, obs: Observation, decision: Decision, core: CoreSettings) -> Gathered:
        client = await self.client()
        namespace = obs.taskrun["metadata"]["namespace"]
        logs: dict[str, LogTail] = {}
        result: results.Result | None = None
        events: list[Mapping[str, Any]] = []

        async def one(read: Any) -> Any:
            try:
                if isinstance(read, ReadEvents) and read.uid:
                    return await client.list_pod_events(namespace, read.uid)
                if isinstance(read, ReadLogTail):
                    return await client.read_tail(
                        namespace,
                        read.pod,
                        read.container,
                        lines=read.lines,
                        max_bytes=read.max_bytes,
                    )
                if isinstance(read, ReadResult) and read.via_exec:
                    out = await client.exec(
                        namespace,
                        read.pod,
                        read.container,
                        results.EXEC_READ_COMMAND,
                        max_stdout=results.exec_read_limit(core.max_result_bytes),
                    )
                    return results.from_exec(out, core.max_result_bytes)
                if isinstance(read, ReadResult):
                    data, _ = await client.read_log(
                        namespace, read.pod, read.container, limit_bytes=read.size + 1
                    )
                    handover = results.LogHandOver(size=read.size, sha256=read.sha256)
                    return results.from_log(data, handover, core.max_result_bytes)
            except ApiError as err:
                # A container that never started or a pod already gone has nothing to give;
                # the decision goes on without it.
                log.info("%s for %s/%s: %s", type(read).__name__, namespace, read.pod, err)
            return None

        # The reads are independent: one round trip for all of them instead of one each.
        answers = await asyncio.gather(*(one(read) for read in decision.reads))
        for read, answer in zip(decision.reads, answers, strict=True):
            if answer is None:
                continue
            if isinstance(read, ReadEvents):
                events = answer
            elif isinstance(read, ReadLogTail):
                logs[read.container] = answer
            elif isinstance(read, ReadResult):
                result = answer
        return Gathered(logs=logs, result=result, events=events)

    async def _act(
        self, key: Key, obs: Observation, decision: Decision
    ) -> tuple[Observation, bool]:
        """Execute the actions; True when the world changed so that deciding again pays."""
        client = await self.client()
        namespace, name = key
        taskrun = obs.taskrun
        for action in decision.actions:
            if isinstance(action, CreatePod):
                try:
                    pod = await client.create_pod(namespace, action.pod, taskrun["metadata"]["uid"])
                except PodNameConflict as err:
                    return replace(obs, create_error=(Reason.POD_NAME_CONFLICT, str(err))), True
                except ApiError as err:
                    refused = create_refusal(err.status, err.message)
                    if refused is not None:
                        return replace(obs, create_error=refused), True
                    if not create_can_heal(err.status):
                        raise
                    log.info("pod create for %s/%s refused: %s", namespace, name, err.message)
                    words = f"the API server refused the pod ({err.status} {err.reason}): "
                    return replace(obs, create_refused=words + err.message), True
                # The watch may have brought a later version while the create was in flight.
                pod = self._cache_pod((namespace, pod["metadata"]["name"]), pod)
                return replace(obs, pod=pod, now=self.clock.now()), True
            if isinstance(action, PatchStatus):
                try:
                    updated = await client.patch_status(namespace, name, action.patch)
                except ApiError as err:
                    if not too_large(err) or obs.status_refused is not None:
                        raise
                    size = budget.encoded_size(action.patch)
                    log.warning("status of %s/%s refused as too large: %s", *key, err.message)
                    words = f"{err.status}: {err.message}; the patch was {size} bytes"
                    return replace(obs, status_refused=words), True
                self._observe_transition(taskrun, updated)
                if _newer(updated, self._taskruns.get(key)):
                    self._taskruns[key] = finished_view(updated)
                    self._count_phase(key, (updated.get("status") or {}).get("phase"))
                taskrun = updated
                obs = replace(obs, taskrun=updated)
            elif isinstance(action, EmitEvent):
                await client.create_event(taskrun, action.type, action.reason, action.message)
            elif isinstance(action, DeletePod):
                await client.delete_pod(namespace, action.name, action.uid, action.grace_seconds)
                if action.uid:
                    self._deleting.add(action.uid)
            elif isinstance(action, DeleteTaskRun):
                await client.delete_taskrun(namespace, name, action.uid)
            elif isinstance(action, StopSidecar):
                if action.uid in self._stopped_sidecars:
                    continue
                try:
                    await client.exec(
                        namespace, action.pod, action.container, results.EXEC_KILL_COMMAND
                    )
                    if action.uid:
                        self._stopped_sidecars.add(action.uid)
                except ApiError as err:
                    # The pod may be gone or the sidecar already stopped; a kept pod whose
                    # sidecar still sleeps is retried on its next event.
                    log.info(
                        "stopping %s in %s/%s: %s", action.container, namespace, action.pod, err
                    )
        return obs, False

    def _observe_transition(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        old = (before.get("status") or {}).get("phase")
        status = after.get("status") or {}
        new = status.get("phase")
        if old == new:
            return
        if new == Phase.RUNNING:
            created = parse_optional((after.get("metadata") or {}).get("creationTimestamp"))
            if created is not None:
                metrics.observe_startup_latency((self.clock.now() - created).total_seconds())
        if new in FINISHED_PHASES:
            started = parse_optional(status.get("startTime"))
            ended = parse_optional(status.get("completionTime"))
            duration = (ended - started).total_seconds() if started and ended else None
            metrics.observe_finished(str(new), str(status.get("reason", "")), duration)


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


def _cacheable(body: Mapping[str, Any], owned: bool) -> Mapping[str, Any]:
    """What the cache keeps of a TaskRun: its finished view, else the object itself."""
    view = finished_view(body)
    if view is not body:
        return view
    return body if owned and type(body) is dict else _plain(body)


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    # kopf's bodies are live views; keep a snapshot of what this event said.
    return {k: _copy(v) for k, v in body.items()}


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _rv(body: Mapping[str, Any] | None) -> int | None:
    text = ((body or {}).get("metadata") or {}).get("resourceVersion")
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _newer(body: Mapping[str, Any], cached: Mapping[str, Any] | None) -> bool:
    """True unless ``cached`` is known to be more recent (our own write's response)."""
    if cached is None:
        return True
    new, old = _rv(body), _rv(cached)
    if new is None or old is None:
        return True
    if (body.get("metadata") or {}).get("uid") != (cached.get("metadata") or {}).get("uid"):
        return True
    return new >= old


def _same_version(body: Mapping[str, Any], cached: Mapping[str, Any] | None) -> bool:
    """``body`` is exactly what is cached: the same object at the same resourceVersion."""
    if cached is None:
        return False
    new, old = _rv(body), _rv(cached)
    return (
        new is not None
        and new == old
        and (body.get("metadata") or {}).get("uid") == (cached.get("metadata") or {}).get("uid")
    )


def _owner_name(pod: Mapping[str, Any]) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == KIND:
            return str(ref.get("name"))
    return None


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
    # machinery (controller/eventpath.py). The handlers above are the fallback.
    eventpath.take_over(
        registry,
        {
            ("", "pods"): eventpath.Route(controller.on_pod, {LABEL_MANAGED_BY: MANAGED_BY}),
            (GROUP, PLURAL): eventpath.Route(controller.on_taskrun),
        },
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
