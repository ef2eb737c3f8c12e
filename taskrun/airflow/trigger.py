"""TaskRunTrigger: waits, in the triggerer, for a TaskRun to finish by watching it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from taskrun.airflow import mapping
from taskrun.airflow.client import AsyncTaskRunApi, TaskRunGone

FINISHED = ("Succeeded", "Failed", "Skipped", "Cancelled")


class TaskRunTrigger(BaseTrigger):
    """Fires one event when the TaskRun reaches a terminal phase (or cannot be watched).

    The event is ``{"status": "done" | "error", "name", "namespace", "phase", "message"}``.
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
        on_kill_action: str = "cancel",
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
        self.on_kill_action = on_kill_action

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
                "on_kill_action": self.on_kill_action,
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

    def _event(self, status: str, phase: str | None = None, message: str = "") -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "name": self.name,
                "namespace": self.namespace,
                "phase": phase,
                "message": message,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async with self._hook().get_conn() as api_client:
                api = AsyncTaskRunApi(api_client)
                async for taskrun in api.watch(self.name, self.namespace):
                    phase = (taskrun.get("status") or {}).get("phase")
                    if phase in FINISHED:
                        yield self._event("done", phase)
                        return
        except TaskRunGone as exc:
            yield self._event("error", message=str(exc))
        except Exception as exc:
            # The operator turns this into a task failure with the message; a trigger that
            # dies without an event would leave the task deferred until its timeout.
            self.log.exception("Watching TaskRun %s/%s failed", self.namespace, self.name)
            yield self._event("error", message=f"{type(exc).__name__}: {exc}")

    async def on_kill(self) -> None:
        """Airflow 3.3+: the user killed the deferred task; apply on_kill_action."""
        if self.on_kill_action == "keep_pod":
            return
        async with self._hook().get_conn() as api_client:
            api = AsyncTaskRunApi(api_client)
            if self.on_kill_action in ("delete", "delete_pod"):
                await api.delete(self.name, self.namespace)
            else:
                await api.patch(self.name, self.namespace, mapping.CANCEL_PATCH)
