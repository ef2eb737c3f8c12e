"""One pass's I/O: find the run's pod, answer the core's reads, carry out its actions.

``decide`` asks; this module reads and writes through the API client and keeps the caches
and gauges in step with what it wrote.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from controller.cache import ObjectCache
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
from controller.core.clock import Clock
from controller.core.refusals import create_can_heal, create_refusal
from controller.core.tails import LogTail
from controller.disposer import PodDelete, PodDisposer
from controller.gauges import PhaseGauges, observe_transition
from controller.k8s import ApiError, Client, PodNameConflict, taskrun_gone, too_large
from controller.recorder import EventRecorder
from controller.workqueue import Key
from taskrun.api import FINISHED_PHASES, Reason

log = logging.getLogger(__name__)


class TaskRunGone(Exception):
    """A write on the TaskRun was answered NotFound for that very object: it was deleted
    and its DELETED has not reached the cache yet (late, or lost). The reconcile ends."""


class Executor:
    """Reads and writes for the reconciles, with what must outlive one call of each."""

    def __init__(
        self,
        client: Callable[[], Awaitable[Client]],
        cache: ObjectCache,
        gauges: PhaseGauges,
        clock: Clock,
        requeue: Callable[[Key], None],
    ) -> None:
        self._client = client
        self.events = EventRecorder(client)
        self.disposer = PodDisposer(client, cache, requeue)
        self._cache = cache
        self._gauges = gauges
        self._clock = clock
        # What was read at the end of an attempt (logs, result, events), by pod uid, kept
        # until a reconcile of the TaskRun completes: a failed status write is tried again
        # without reading every log (and the result) again.
        self._gathered: dict[Key, tuple[str | None, Gathered]] = {}
        # Pods whose exec-mode sidecar was sent its SIGINT: the pod shows the exit only
        # once the node has written it and the watch has brought it, and reconciles in
        # between (any event of the pod or run) must not send the kill again.
        self._stopped_sidecars: set[str] = set()
        # The refused delete of an earlier attempt's pod, raised after the decision that
        # says so in status (``act``).
        self._delete_refusals: dict[Key, ApiError] = {}

    def forget_taskrun(self, key: Key) -> None:
        self._gathered.pop(key, None)

    def forget_pod(self, uid: str) -> None:
        self._stopped_sidecars.discard(uid)
        self.disposer.forget_pod(uid)

    def done(self, key: Key) -> None:
        """A reconcile of ``key`` completed: what it gathered is not needed again."""
        self._gathered.pop(key, None)

    async def pod_of(
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
        pod_name = _current_pod_name(taskrun)
        if not pod_name:
            return None, None
        key = (namespace, pod_name)
        pod = self._cache.pod(key)
        if pod is None and phase in ("Pending", "Running") and status.get("podName") == pod_name:
            # The watch may not have listed the pod yet (a restart): ask before declaring
            # it deleted.
            found = await (await self._client()).get_pod(namespace, pod_name)
            if found is not None:
                self._cache.wrote_pod(key, found)
                pod = self._cache.pod(key)
        if pod is None:
            return None, None
        if not naming.owns(pod, meta.get("uid")):
            return None, (Reason.POD_NAME_CONFLICT, naming.conflict_message(pod, meta.get("uid")))
        return pod, None

    def other_pods(self, taskrun: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
        """The TaskRun's own pods other than its current attempt's, from the cache (no
        request): those of earlier attempts still there (core/earlier.py). O(its pods)."""
        meta = taskrun.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return ()
        current = _current_pod_name(taskrun)
        return tuple(
            pod
            for pod in self._cache.pods_owned_by(meta.get("namespace", ""), uid)
            if pod["metadata"].get("name") != current and naming.owns(pod, uid)
        )

    async def gather(
        self, key: Key, obs: Observation, decision: Decision, core: CoreSettings
    ) -> Gathered:
        """The answers to ``decision.reads``, read once per pod until the reconcile completes."""
        pod_uid = ((obs.pod or {}).get("metadata") or {}).get("uid")
        cached = self._gathered.get(key)
        if cached is not None and cached[0] == pod_uid:
            return cached[1]
        gathered = await self._read(obs, decision, core)
        self._gathered[key] = (pod_uid, gathered)
        return gathered

    async def _read(self, obs: Observation, decision: Decision, core: CoreSettings) -> Gathered:
        client = await self._client()
        namespace = obs.taskrun["metadata"]["namespace"]
        logs: dict[str, LogTail] = {}
        stopped: set[str] = set()
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
                if read.stopped:
                    stopped.add(read.container)
            elif isinstance(read, ReadResult):
                result = answer
        return Gathered(logs=logs, result=result, events=events, stopped=frozenset(stopped))

    async def act(self, key: Key, obs: Observation, decision: Decision) -> tuple[Observation, bool]:
        """Execute the actions; True when the world changed so that deciding again pays."""
        client = await self._client()
        namespace, name = key
        for action in decision.actions:
            if isinstance(action, CreatePod):
                return await self._create_pod(client, key, obs, action), True
            if isinstance(action, PatchStatus):
                obs, refused = await self._patch_status(client, key, obs, action)
                if refused:
                    return obs, True
            elif isinstance(action, EmitEvent):
                self.events.record(obs.taskrun, action.type, action.reason, action.message)
            elif isinstance(action, DeletePod):
                if self._dispose(key, obs, action):
                    obs = _marked_deleting(obs, action.uid)
                    continue
                try:
                    await client.delete_pod(
                        namespace, action.name, action.uid, action.grace_seconds
                    )
                except ApiError as err:
                    phase = (obs.taskrun.get("status") or {}).get("phase")
                    if (
                        obs.delete_refused is not None
                        or phase in FINISHED_PHASES
                        or action.name == _current_pod_name(obs.taskrun)
                        or action.name == ((obs.pod or {}).get("metadata") or {}).get("name")
                    ):
                        # Not an earlier pod as this observation stands (the delete right
                        # after the Retrying status still holds the old pod as ``obs.pod``):
                        # the next reconcile observes afresh and decides it as earlier.
                        raise
                    # An earlier attempt's pod: decide again with the refusal (the status
                    # says why the next attempt waits), then fail the reconcile (``act``'s
                    # end) so the work queue's back-off asks again.
                    log.info("delete of pod %s/%s refused: %s", namespace, action.name, err)
                    self._delete_refusals[key] = err
                    words = f"{err.status} {err.reason}: {err.message}"
                    return replace(obs, delete_refused=(action.name, words)), True
                if action.uid:
                    self._cache.deleting(action.uid)
                    obs = _marked_deleting(obs, action.uid)
            elif isinstance(action, DeleteTaskRun):
                await client.delete_taskrun(namespace, name, action.uid)
            elif isinstance(action, StopSidecar):
                await self._stop_sidecar(client, namespace, action)
        refusal = self._delete_refusals.pop(key, None)
        if refusal is not None and obs.delete_refused is not None:
            raise refusal
        return obs, False

    def _dispose(self, key: Key, obs: Observation, action: DeletePod) -> bool:
        """Hand the delete to the disposer; False when it stays on the worker.

        Only the delete after the terminal status (written by now: ``obs`` holds the
        patch's answer) leaves the worker: nothing of the run waits for it any more. The
        delete of a retried attempt's pod stays inline: the next attempt's pod is created
        in the same pass only once it was accepted (core/earlier.py orders them), and a
        refused one fails the reconcile, which decides it again from the cache.
        """
        phase = (obs.taskrun.get("status") or {}).get("phase")
        if not action.uid or phase not in FINISHED_PHASES:
            return False
        return self.disposer.dispose(
            PodDelete(key=key, name=action.name, uid=action.uid, grace_seconds=action.grace_seconds)
        )

    async def _create_pod(
        self, client: Client, key: Key, obs: Observation, action: CreatePod
    ) -> Observation:
        """The observation after the create: with the new pod, or with why there is none."""
        namespace, name = key
        try:
            pod = await client.create_pod(namespace, action.pod, obs.taskrun["metadata"]["uid"])
        except PodNameConflict as err:
            return replace(obs, create_error=(Reason.POD_NAME_CONFLICT, str(err)))
        except ApiError as err:
            refused = create_refusal(err.status, err.message)
            if refused is not None:
                return replace(obs, create_error=refused)
            if not create_can_heal(err.status):
                raise
            log.info("pod create for %s/%s refused: %s", namespace, name, err.message)
            words = f"the API server refused the pod ({err.status} {err.reason}): "
            return replace(obs, create_refused=words + err.message)
        pod = self._cache.wrote_pod((namespace, pod["metadata"]["name"]), pod)
        return replace(obs, pod=pod, now=self._clock.now())

    async def _patch_status(
        self, client: Client, key: Key, obs: Observation, action: PatchStatus
    ) -> tuple[Observation, bool]:
        """The observation after the write; True when it was refused as too large."""
        namespace, name = key
        try:
            updated = await client.patch_status(namespace, name, action.patch)
        except ApiError as err:
            if taskrun_gone(err, name):
                raise TaskRunGone(err.message) from err
            if not too_large(err) or obs.status_refused is not None:
                raise
            size = budget.encoded_size(action.patch)
            log.warning("status of %s/%s refused as too large: %s", *key, err.message)
            words = f"{err.status}: {err.message}; the patch was {size} bytes"
            return replace(obs, status_refused=words), True
        observe_transition(obs.taskrun, updated, self._clock.now())
        if self._cache.wrote_taskrun(key, updated):
            self._gauges.count(key, (updated.get("status") or {}).get("phase"))
        return replace(obs, taskrun=updated), False

    async def _stop_sidecar(self, client: Client, namespace: str, action: StopSidecar) -> None:
        if action.uid in self._stopped_sidecars:
            return
        try:
            await client.exec(namespace, action.pod, action.container, results.EXEC_KILL_COMMAND)
            if action.uid:
                self._stopped_sidecars.add(action.uid)
        except ApiError as err:
            # The pod may be gone or the sidecar already stopped; a kept pod whose sidecar
            # still sleeps is retried on its next event.
            log.info("stopping %s in %s/%s: %s", action.container, namespace, action.pod, err)


def _current_pod_name(taskrun: Mapping[str, Any]) -> str | None:
    """The name of the pod ``decide`` sees as the run's own: the finished run's last pod, or
    the current attempt's."""
    status = taskrun.get("status") or {}
    if status.get("phase") in FINISHED_PHASES:
        name = status.get("podName")
        return name if isinstance(name, str) and name else None
    return attempt_pod_name(taskrun)


def _marked_deleting(obs: Observation, uid: str | None) -> Observation:
    """``obs`` with the earlier pod ``uid`` shown deleting: the next round of the same
    pass must not ask for its delete again."""
    if not uid or not any(p["metadata"].get("uid") == uid for p in obs.other_pods):
        return obs
    marked = tuple(
        {**p, "metadata": {**p["metadata"], "deletionTimestamp": "requested"}}
        if p["metadata"].get("uid") == uid
        else p
        for p in obs.other_pods
    )
    return replace(obs, other_pods=marked)
