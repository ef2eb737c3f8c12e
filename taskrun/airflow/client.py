"""The only module of taskrun.airflow that talks to the Kubernetes API (sync and async)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
)
from typing import Any, TypeVar, cast

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException, ApiTypeError
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

from taskrun.airflow.watch import (
    WATCH_GRACE_SECONDS,
    WATCH_TIMEOUT_SECONDS,
    Action,
    Emit,
    Read,
    Sleep,
    TaskRunGone,
    TaskRunWatch,
    Watch,
)
from taskrun.api import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

TaskRun = dict[str, Any]
Predicate = Callable[[TaskRun], bool]

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


# Answers worth another try, as KPO's generic_api_retry and client-go's retry treat them;
# a create retried after a 500 that had in fact succeeded meets 409 and reads the TaskRun.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
API_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)  # then give up: five attempts in all
RETRY_AFTER_MAX_SECONDS = 10.0

T = TypeVar("T")


def _retry_delay(exc: Exception, attempt: int) -> float | None:
    """Seconds before trying again after ``exc``; None when it is not transient or the
    attempts are spent."""
    if attempt >= len(API_BACKOFF_SECONDS):
        return None
    if isinstance(exc, ApiException):
        if exc.status not in TRANSIENT_STATUSES:
            return None
        after = (exc.headers or {}).get("Retry-After") if exc.headers else None
        if after is not None and str(after).isdigit():
            return min(float(after), RETRY_AFTER_MAX_SECONDS)
    return API_BACKOFF_SECONDS[attempt]


def _with_retries(call: Callable[[], T], what: str) -> T:
    """``call()``, again after a transient API answer or a broken connection."""
    attempt = 0
    while True:
        try:
            return call()
        except (ApiException, HTTPError, OSError) as exc:
            delay = _retry_delay(exc, attempt)
            if delay is None:
                raise
            log.warning("%s: %s; trying again in %.1f s", what, _brief(exc), delay)
            time.sleep(delay)
            attempt += 1


async def _with_retries_async(call: Callable[[], Awaitable[T]], what: str) -> T:
    """The trigger's ``_with_retries``: the same answers, the same delays."""
    from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

    attempt = 0
    while True:
        try:
            return await call()
        except (AsyncApiException, OSError) as exc:
            delay = _retry_delay(_as_sync(exc), attempt)
            if delay is None:
                raise
            log.warning("%s: %s; trying again in %.1f s", what, _brief(exc), delay)
            await asyncio.sleep(delay)
            attempt += 1


def _as_sync(exc: Exception) -> Exception:
    """kubernetes_asyncio's ApiException seen as the sync one (status and headers)."""
    status = getattr(exc, "status", None)
    if status is None:
        return exc
    copy = ApiException(status=status, reason=getattr(exc, "reason", None))
    copy.headers = getattr(exc, "headers", None)
    return copy


def _brief(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status:
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


class _Broken(Exception):
    """The watch stream broke or went silent past its read timeout; resume it."""


def _client_query(watch: Watch) -> dict[str, Any]:
    """The state machine's watch query, as the generated clients take it."""
    return {
        **watch.query,
        **_WATCH,
        "_preload_content": False,
        "_request_timeout": (30, WATCH_TIMEOUT_SECONDS + WATCH_GRACE_SECONDS),
    }


# Pauses between watches; tests replace them to hold both drivers to the same script.
_pause = time.sleep
_pause_async = asyncio.sleep


class TaskRunApi:
    """TaskRuns and their pods' logs over a (sync) kubernetes ApiClient."""

    def __init__(self, api_client: ApiClient) -> None:
        self._custom = CustomObjectsApi(api_client)
        self._core = CoreV1Api(api_client)

    def create_or_get(self, body: TaskRun) -> tuple[TaskRun, bool]:
        """Create the TaskRun, or return the existing one of the same name (and False)."""
        ns = body["metadata"]["namespace"]
        try:
            created = _with_retries(
                lambda: self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, body
                ),
                "creating the TaskRun",
            )
            return cast(TaskRun, created), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        return self.get(body["metadata"]["name"], ns), False

    def get(self, name: str, namespace: str) -> TaskRun:
        found = _with_retries(
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            ),
            "reading the TaskRun",
        )
        return cast(TaskRun, found)

    def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> TaskRun:
        args = (GROUP, VERSION, namespace, PLURAL, name, patch)

        def once() -> Any:
            try:
                return self._custom.patch_namespaced_custom_object(*args, **_MERGE_PATCH)
            except ApiTypeError as exc:
                # kubernetes < 35 (Airflow 2.10's provider) takes no _content_type, and
                # sends a merge patch to custom objects already.
                if "_content_type" not in str(exc):
                    raise
                return self._custom.patch_namespaced_custom_object(*args)

        return cast(TaskRun, _with_retries(once, "patching the TaskRun"))

    def delete(self, name: str, namespace: str) -> None:
        try:
            _with_retries(
                lambda: self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
                ),
                "deleting the TaskRun",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def read(self, name: str, namespace: str) -> TaskRun:
        """The TaskRun; TaskRunGone if it does not exist."""
        try:
            return self.get(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise TaskRunGone(name, namespace) from None
            raise

    def wait_for(
        self, name: str, namespace: str, predicate: Predicate, known: TaskRun | None = None
    ) -> TaskRun:
        """Watch the TaskRun until ``predicate`` holds; returns that version of it.

        ``known``: a version of the TaskRun already at hand (the create's answer, or what
        the last wait returned): the watch starts from it without reading the TaskRun
        again, and replays whatever changed since. The TaskRun is read only when there is
        no such version or the server no longer has the history after it (410 Gone).
        """
        for taskrun in self.versions(name, namespace, known):
            if predicate(taskrun):
                return taskrun
        raise AssertionError("unreachable: a watch resumes until it is told to stop")

    def versions(self, name: str, namespace: str, known: TaskRun | None) -> Iterator[TaskRun]:
        """Every version of the TaskRun from ``known`` (or a read) on: the sync driver of
        TaskRunWatch (taskrun.airflow.watch)."""
        machine = TaskRunWatch(name, namespace, error=ApiException, known=known)
        action = machine.start()
        while True:
            if isinstance(action, Read):
                action = machine.got(self.read(name, namespace))
            elif isinstance(action, Emit):
                yield action.taskrun
                action = machine.next()
            elif isinstance(action, Sleep):
                _pause(action.seconds)
                action = machine.next()
            else:
                action = yield from self._watch(machine, action)

    def _watch(self, machine: TaskRunWatch, watch: Watch) -> Generator[TaskRun, None, Action]:
        """One watch request: yields its versions, returns what the machine wants next."""
        # Read the stream ourselves instead of through kubernetes.watch: its query sends
        # watch=True (Python's spelling), and one watch per wait is all that is needed.
        machine.opened(time.monotonic())
        try:
            response: Any = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, machine.namespace, PLURAL, **_client_query(watch)
            )
        except ApiException as exc:
            refused = machine.refused(exc.status, exc.reason, time.monotonic())
            if refused is None:
                raise
            return refused
        ended = False
        try:
            lines = iter_resp_lines(response)
            while True:
                try:
                    line = next(lines, None)
                except HTTPError as exc:
                    return machine.broke(str(exc), time.monotonic())
                if line is None:
                    ended = True
                    return machine.ended(time.monotonic())
                action = machine.line(line, time.monotonic())
                if isinstance(action, Emit):
                    yield action.taskrun
                elif action is not None:
                    return action
        finally:
            _release(response, ended)

    def pod_exists(self, name: str, namespace: str) -> bool:
        try:
            _with_retries(
                lambda: self._core.read_namespaced_pod(name, namespace), "reading the pod"
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def read_log(self, pod: str, namespace: str, container: str) -> bytes | None:
        """The container's whole log: None if the pod is gone (404), empty if the container
        is not there or has not started (400)."""
        try:
            # Raw bytes (not the client's decoded str), so offsets match what was streamed.
            response: Any = _with_retries(
                lambda: self._core.read_namespaced_pod_log(
                    pod, namespace, container=container, _preload_content=False
                ),
                "reading the pod's log",
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 400:
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
        ended = False
        try:
            yield from response.stream(4096, decode_content=True)
            ended = True
        finally:
            _release(response, ended)


def _release(response: Any, ended: bool) -> None:
    """Give a streamed response's connection back. One left before the end of its stream is
    closed first: back in the pool, the next request would read the rest of the stream as
    its answer (urllib3 then retries it: a second request for one call)."""
    if not ended:
        response.close()
    response.release_conn()


class AsyncTaskRunApi:
    """TaskRuns over a kubernetes_asyncio ApiClient, for the trigger."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes_asyncio.client import CustomObjectsApi as AsyncCustomObjectsApi

        self._custom = AsyncCustomObjectsApi(api_client)

    async def get(self, name: str, namespace: str) -> TaskRun:
        return await _with_retries_async(
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            ),
            "reading the TaskRun",
        )

    async def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> TaskRun:
        return await _with_retries_async(
            lambda: self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, patch, **_MERGE_PATCH
            ),
            "patching the TaskRun",
        )

    async def delete(self, name: str, namespace: str) -> None:
        from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

        try:
            await _with_retries_async(
                lambda: self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
                ),
                "deleting the TaskRun",
            )
        except AsyncApiException as exc:
            if exc.status != 404:
                raise

    async def watch(
        self,
        name: str,
        namespace: str,
        resource_version: str | None = None,
        uid: str | None = None,
    ) -> AsyncGenerator[TaskRun, None]:
        """Every version of the TaskRun from now on: the async driver of TaskRunWatch.

        Without ``resource_version`` it starts with the current one (a read); with it, with
        every version after that one (replayed by the server), without a read. The TaskRun
        is read again only when the server no longer has the history to resume (410 Gone).
        ``uid``: the TaskRun's, if known; another uid under the name is TaskRunGone.
        """
        from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

        def error(code: int | None, message: str | None) -> Exception:
            return AsyncApiException(status=code, reason=message)

        machine = TaskRunWatch(name, namespace, error=error, version=resource_version, uid=uid)
        loop = asyncio.get_running_loop()
        action = machine.start()
        while True:
            if isinstance(action, Read):
                action = machine.got(await self.get(name, namespace))
                continue
            if isinstance(action, Emit):
                yield action.taskrun
                action = machine.next()
                continue
            if isinstance(action, Sleep):
                await _pause_async(action.seconds)
                action = machine.next()
                continue
            # As in the sync client: our own stream reader, so the query says watch=true.
            machine.opened(loop.time())
            try:
                response = await self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, **_client_query(action)
                )
            except AsyncApiException as exc:
                refused = machine.refused(exc.status, exc.reason, loop.time())
                if refused is None:
                    raise
                action = refused
                continue
            next_action: Action | None = None
            try:
                async for line in _lines(response.content):
                    step = machine.line(line, loop.time())
                    if isinstance(step, Emit):
                        yield step.taskrun
                    elif step is not None:
                        next_action = step
                        break
            except _Broken as exc:
                next_action = machine.broke(str(exc), loop.time())
            finally:
                response.release()
            action = next_action or machine.ended(loop.time())


async def _lines(content: Any) -> AsyncIterator[bytes]:
    """The lines of an aiohttp stream, however long: ``readline`` refuses lines over 128 KiB,
    and a TaskRun with its result in status can be larger (up to the result cap)."""
    import aiohttp

    pending: list[bytes] = []
    while True:
        try:
            chunk = await content.readany()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _Broken(f"{type(exc).__name__}: {exc}") from exc
        if not chunk:
            if pending:
                yield b"".join(pending)
            return
        *complete, rest = chunk.split(b"\n")
        if complete:
            yield b"".join([*pending, complete[0]])
            pending = []
            for line in complete[1:]:
                yield line
        if rest:
            pending.append(rest)


def dump(taskrun: TaskRun) -> str:
    """Compact JSON of a TaskRun for log lines."""
    return json.dumps(taskrun, sort_keys=True, default=str)
