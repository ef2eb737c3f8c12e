"""The only module of taskrun.airflow that talks to the Kubernetes API (sync and async)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

GROUP = "taskrun.dev"
VERSION = "v1alpha1"
PLURAL = "taskruns"

TaskRun = dict[str, Any]
Predicate = Callable[[TaskRun], bool]

# Server-side watch timeout: short enough that a silently dropped connection is noticed,
# long enough not to matter for load.
WATCH_TIMEOUT_SECONDS = 60
# Read timeout of a followed log: a quiet container is normal, so reconnecting after this
# many silent seconds is routine, not an error.
LOG_READ_TIMEOUT_SECONDS = 300
# The generated clients would send a dict as json-patch (sync) or strategic merge patch
# (asyncio), neither of which a custom resource takes; a merge patch is meant. Passed as
# **kwargs since the typed signatures do not list it.
# The clients render watch=True as "True"; Kubernetes takes either, but "true" is what
# every other client sends (and all devcluster accepts).
_WATCH: dict[str, Any] = {"watch": "true"}
_MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


class TaskRunApi:
    """TaskRuns and their pods' logs over a (sync) kubernetes ApiClient."""

    def __init__(self, api_client: ApiClient) -> None:
        self._custom = CustomObjectsApi(api_client)
        self._core = CoreV1Api(api_client)

    def create_or_get(self, body: TaskRun) -> tuple[TaskRun, bool]:
        """Create the TaskRun, or return the existing one of the same name (and False)."""
        ns = body["metadata"]["namespace"]
        try:
            created = self._custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
            return cast(TaskRun, created), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        return self.get(body["metadata"]["name"], ns), False

    def get(self, name: str, namespace: str) -> TaskRun:
        found = self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return cast(TaskRun, found)

    def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> TaskRun:
        patched = self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, patch, **_MERGE_PATCH
        )
        return cast(TaskRun, patched)

    def delete(self, name: str, namespace: str) -> None:
        try:
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def wait_for(self, name: str, namespace: str, predicate: Predicate) -> TaskRun:
        """Watch the TaskRun until ``predicate`` holds; returns that version of it."""
        while True:
            try:
                taskrun = self.get(name, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    raise TaskRunGone(name, namespace) from None
                raise
            if predicate(taskrun):
                return taskrun
            version = taskrun["metadata"].get("resourceVersion")
            for event in self._watch_events(name, namespace, version):
                kind, obj = event.get("type"), event.get("object")
                if kind == "DELETED":
                    raise TaskRunGone(name, namespace)
                if kind in ("ADDED", "MODIFIED") and isinstance(obj, dict) and predicate(obj):
                    return obj

    def _watch_events(self, name: str, namespace: str, version: str | None) -> Iterator[dict]:
        # Read the stream ourselves instead of through kubernetes.watch: its query sends
        # watch=True (Python's spelling), and one watch per wait is all that is needed.
        response: Any = self._custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=version,
            timeout_seconds=WATCH_TIMEOUT_SECONDS,
            allow_watch_bookmarks=True,
            **_WATCH,
            _preload_content=False,
            _request_timeout=(30, WATCH_TIMEOUT_SECONDS + 30),
        )
        try:
            for line in iter_resp_lines(response):
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    if status.get("code") == 410:
                        return  # too old a version: the caller re-reads and watches again
                    raise ApiException(status=status.get("code"), reason=status.get("message"))
                yield event
        finally:
            response.release_conn()

    def pod_exists(self, name: str, namespace: str) -> bool:
        try:
            self._core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def read_log(self, pod: str, namespace: str, container: str) -> bytes:
        """The container's whole log; empty if the pod or container is gone."""
        try:
            # Raw bytes (not the client's decoded str), so offsets match what was streamed.
            response: Any = self._core.read_namespaced_pod_log(
                pod, namespace, container=container, _preload_content=False
            )
        except ApiException as exc:
            if exc.status in (400, 404):
                return b""
            raise
        return bytes(response.data)

    def follow_log(self, pod: str, namespace: str, container: str) -> Iterator[bytes]:
        """The container's log as it is written, until the container ends."""
        response: Any = self._core.read_namespaced_pod_log(
            pod,
            namespace,
            container=container,
            follow=True,
            _preload_content=False,
            _request_timeout=(30, LOG_READ_TIMEOUT_SECONDS),
        )
        try:
            yield from response.stream(4096, decode_content=True)
        finally:
            response.release_conn()


class TaskRunGone(Exception):
    """The TaskRun was deleted while we waited for it."""

    def __init__(self, name: str, namespace: str) -> None:
        super().__init__(f"TaskRun {namespace}/{name} was deleted")
        self.name = name
        self.namespace = namespace


class AsyncTaskRunApi:
    """TaskRuns over a kubernetes_asyncio ApiClient, for the trigger."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes_asyncio.client import CustomObjectsApi as AsyncCustomObjectsApi

        self._custom = AsyncCustomObjectsApi(api_client)

    async def get(self, name: str, namespace: str) -> TaskRun:
        return await self._custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )

    async def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> TaskRun:
        return await self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, patch, **_MERGE_PATCH
        )

    async def delete(self, name: str, namespace: str) -> None:
        from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

        try:
            await self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
            )
        except AsyncApiException as exc:
            if exc.status != 404:
                raise

    async def watch(self, name: str, namespace: str) -> AsyncIterator[TaskRun]:
        """Every version of the TaskRun from now on, starting with the current one."""
        from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

        while True:
            taskrun = await self.get(name, namespace)
            yield taskrun
            # As in the sync client: our own stream reader, so the query says watch=true.
            response = await self._custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=taskrun["metadata"].get("resourceVersion"),
                timeout_seconds=WATCH_TIMEOUT_SECONDS,
                allow_watch_bookmarks=True,
                **_WATCH,
                _preload_content=False,
                _request_timeout=WATCH_TIMEOUT_SECONDS + 30,
            )
            try:
                async for raw in response.content:
                    line = raw.strip()
                    if not line:
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object")
                    if kind == "ERROR":
                        code = (obj or {}).get("code")
                        if code == 410:
                            break
                        raise AsyncApiException(status=code, reason=(obj or {}).get("message"))
                    if kind == "DELETED":
                        raise TaskRunGone(name, namespace)
                    if kind in ("ADDED", "MODIFIED") and isinstance(obj, dict):
                        yield obj
            finally:
                response.release()


def dump(taskrun: TaskRun) -> str:
    """Compact JSON of a TaskRun for log lines."""
    return json.dumps(taskrun, sort_keys=True, default=str)
