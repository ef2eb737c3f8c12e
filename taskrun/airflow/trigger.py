"""TaskRunTrigger: waits, in the triggerer, for a TaskRun to finish by watching it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from taskrun.airflow import mapping
from taskrun.airflow.client import AsyncTaskRunApi, TaskRunGone
from taskrun.api import FINISHED_PHASES, OnKillAction

# The finished TaskRun travels in the event (so the resumed task need not read it again)
# when its JSON is at most this large; a larger one (a big result) is read on resume.
# Events are stored in the Airflow database (next_kwargs): Airflow 2 keeps them in a TEXT
# column, 64 KiB on MySQL, and wraps every dict on the way in.
EVENT_TASKRUN_MAX_BYTES = 32 * 1024


class TaskRunTrigger(BaseTrigger):
    """Fires one event when the TaskRun reaches a terminal phase (or cannot be watched).

    The event is ``{"status": "done" | "error", "name", "namespace", "phase", "message"}``,
    plus ``"taskrun"``: the finished TaskRun (without managedFields) when it is small enough
    (EVENT_TASKRUN_MAX_BYTES).

    ``resource_version``: a version of the TaskRun the operator already has (from its
    create, or the read of a reattach). The watch starts from it, so the server replays every
    change since, including a finish that happened before the trigger started; without it
    the trigger reads the TaskRun first. A trigger restarted on another triggerer starts
    from the same version and so sees the same changes again.

    ``uid``: the uid of the TaskRun the operator created or reattached to; a TaskRun of the
    same name with another uid (ours deleted, another made) is reported as deleted, and
    the event carries the uid so the resumed task can check a TaskRun it reads.
    """

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        kubernetes_conn_id: str | None = None,
        in_cluster: bool | None = None,
        config_dict: dict[str, Any] | None = None,
        cluster_context: str | None = None,
        on_kill_action: str = OnKillAction.CANCEL.value,
        resource_version: str | None = None,
        uid: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.in_cluster = in_cluster
        # The kubeconfig's content, not its path: the triggerer may run on another machine,
        # and the provider's async hook ignores config_file (KPO passes a dict for the same
        # reason).
        self.config_dict = config_dict
        self.cluster_context = cluster_context
        self.on_kill_action = OnKillAction.parse(on_kill_action)
        self.resource_version = resource_version
        self.uid = uid

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "in_cluster": self.in_cluster,
                "config_dict": self.config_dict,
                "cluster_context": self.cluster_context,
                "on_kill_action": self.on_kill_action.value,
                "resource_version": self.resource_version,
                "uid": self.uid,
            },
        )

    def _hook(self) -> Any:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

        return AsyncKubernetesHook(
            config_dict=self.config_dict,
            conn_id=self.kubernetes_conn_id,
            in_cluster=self.in_cluster,
            cluster_context=self.cluster_context,
        )

    def _event(
        self,
        status: str,
        phase: str | None = None,
        message: str = "",
        taskrun: dict[str, Any] | None = None,
    ) -> TriggerEvent:
        payload: dict[str, Any] = {
            "status": status,
            "name": self.name,
            "namespace": self.namespace,
            "phase": phase,
            "message": message,
        }
        if self.uid:
            payload["uid"] = self.uid
        if taskrun is not None:
            slim = {**taskrun, "metadata": dict(taskrun.get("metadata") or {})}
            slim["metadata"].pop("managedFields", None)
            if len(json.dumps(slim, default=str)) <= EVENT_TASKRUN_MAX_BYTES:
                payload["taskrun"] = slim
        return TriggerEvent(payload)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async with self._hook().get_conn() as api_client:
                api = AsyncTaskRunApi(api_client)
                finished = await self._watch_until_finished(api)
            phase = mapping.status_of(finished).phase
            yield self._event("done", None if phase is None else phase.value, taskrun=finished)
        except TaskRunGone as exc:
            yield self._event("error", message=str(exc))
        except Exception as exc:
            # The operator turns this into a task failure with the message; a trigger that
            # dies without an event would leave the task deferred until its timeout.
            self.log.exception("Watching TaskRun %s/%s failed", self.namespace, self.name)
            yield self._event("error", message=f"{type(exc).__name__}: {exc}")

    async def _watch_until_finished(self, api: AsyncTaskRunApi) -> dict[str, Any]:
        versions = api.watch(self.name, self.namespace, self.resource_version, uid=self.uid)
        try:
            async for taskrun in versions:
                if mapping.status_of(taskrun).phase in FINISHED_PHASES:
                    return taskrun
        finally:
            await versions.aclose()  # the watch's connection, now, not when collected
        raise RuntimeError("the watch ended before the TaskRun finished")

    async def on_kill(self) -> None:
        """Airflow 3.3+: the user killed the deferred task; apply on_kill_action."""
        if self.on_kill_action is OnKillAction.KEEP_POD:
            return
        async with self._hook().get_conn() as api_client:
            api = AsyncTaskRunApi(api_client)
            if self.on_kill_action.deletes:
                await api.delete(self.name, self.namespace)
            else:
                await api.patch(self.name, self.namespace, mapping.CANCEL_PATCH)
