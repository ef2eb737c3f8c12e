"""Following a TaskRun to its end: a watch in a thread, the pod's log, a progress line."""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

from taskrun.api import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    DEFAULT_BASE_CONTAINER_NAME,
    Phase,
)
from taskrun.cli import render
from taskrun.cli.client import ApiError, Client

Obj = dict[str, Any]
_GONE = object()
RECONNECT_SECONDS = 1.0


class WaitTimeout(Exception):
    """The deadline passed before the TaskRun got where it was awaited."""


class Watcher(threading.Thread):
    """Puts every new state of one TaskRun on a queue; None when it is deleted."""

    def __init__(self, client: Client, namespace: str, first: Obj) -> None:
        super().__init__(daemon=True, name="taskrun-watch")
        self.client, self.namespace = client, namespace
        self.name_ = first["metadata"]["name"]
        self.version = first["metadata"].get("resourceVersion", "0")
        self.states: queue.Queue[Any] = queue.Queue()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                for event in self.client.watch(self.namespace, self.name_, self.version):
                    if self._handle(event):
                        return
            except (ApiError, OSError, ValueError):
                # A dropped watch or a refused one: read the object again, then resume.
                self.stopped.wait(RECONNECT_SECONDS)
                self._reread()

    def _handle(self, event: Obj) -> bool:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            self._reread()
            return False
        self.version = (obj.get("metadata") or {}).get("resourceVersion", self.version)
        if kind == "BOOKMARK":
            return False
        if kind == "DELETED":
            self.states.put(_GONE)
            return True
        self.states.put(obj)
        return False

    def _reread(self) -> None:
        try:
            obj = self.client.get(self.namespace, self.name_)
        except ApiError as err:
            if err.code == 404:
                self.states.put(_GONE)
                self.stopped.set()
            return
        self.version = obj["metadata"].get("resourceVersion", self.version)
        self.states.put(obj)

    def next(self, current: Obj, timeout: float) -> Obj | None:
        """The newest state within ``timeout`` (``current`` if none came); None if deleted."""
        latest: Any = current
        try:
            latest = self.states.get(timeout=timeout)
            while True:
                latest = self.states.get_nowait()
        except queue.Empty:
            pass
        return None if latest is _GONE else latest


class Progress:
    """A live line on a terminal (phase, pod, elapsed); plain lines on change otherwise."""

    def __init__(self, stream: TextIO, tty: bool, now: Callable[[], datetime]) -> None:
        self.stream, self.tty, self.now = stream, tty, now
        self.shown = False
        self.last_key: tuple[Any, ...] | None = None

    def show(self, taskrun: Obj) -> None:
        meta, status = taskrun["metadata"], taskrun.get("status") or {}
        line = render.progress(meta["name"], status, meta.get("creationTimestamp"), self.now())
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.shown = True
        else:
            key = (status.get("phase"), status.get("reason"), status.get("podName"))
            if key == self.last_key:
                return
            self.last_key = key
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Follower:
    """Follows one TaskRun: its state until it finishes, and each attempt's log when asked."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        tty: bool | None = None,
        quiet: bool = False,
    ) -> None:
        self.client, self.namespace = client, namespace
        self.quiet = quiet
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tty = self.err.isatty() if tty is None else tty
        self.progress = Progress(self.err, self.tty, utcnow)

    def until(
        self,
        taskrun: Obj,
        done: Callable[[Obj], bool],
        *,
        logs: bool = False,
        container: str | None = None,
        deadline: float | None = None,
    ) -> Obj:
        """Follow until ``done(status)``; streams each attempt's log first when ``logs``."""
        watcher = Watcher(self.client, self.namespace, taskrun)
        watcher.start()
        streamed: set[str] = set()
        state: Obj = taskrun
        try:
            while True:
                status = state.get("status") or {}
                if status.get("phase") not in render.FINISHED and not self.quiet:
                    self.progress.show(state)
                if logs:
                    self._logs(state, streamed, container)
                pod_pending = logs and status.get("podName") not in streamed | {None}
                if done(status) and not (pod_pending and status.get("phase") in render.FINISHED):
                    return state
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(state["metadata"]["name"])
                wait = 0.5 if self.tty else 2.0
                if deadline is not None:
                    wait = max(0.0, min(wait, deadline - time.monotonic()))
                newer = watcher.next(state, wait)
                if newer is None:
                    raise ApiError(
                        404,
                        "NotFound",
                        f"taskrun/{state['metadata']['name']} was deleted while being followed",
                    )
                state = newer
        finally:
            watcher.stopped.set()
            self.progress.clear()

    def _logs(self, taskrun: Obj, streamed: set[str], container: str | None) -> None:
        status = taskrun.get("status") or {}
        pod = status.get("podName")
        phase = status.get("phase")
        if not pod or pod in streamed or phase not in (Phase.RUNNING, *render.FINISHED):
            return
        name = container or default_container(taskrun)
        self.progress.clear()
        if (status.get("attempts") or 1) > 1:
            self.err.write(f"--- attempt {status['attempts']}: pod {pod} ---\n")
        outcome = self.stream_log(pod, name, follow=True)
        if outcome == "gone" or (outcome == "waiting" and phase in render.FINISHED):
            self.print_tail(taskrun, pod)
            streamed.add(pod)
        elif outcome == "done":
            streamed.add(pod)

    def stream_log(self, pod: str, container: str, *, follow: bool) -> str:
        """'done' after the log's end, 'gone' if the pod is gone, 'waiting' before it runs."""
        try:
            for chunk in self.client.log(self.namespace, pod, container, follow=follow):
                self.out.buffer.write(chunk) if hasattr(self.out, "buffer") else self.out.write(
                    chunk.decode(errors="replace")
                )
                self.out.flush()
        except ApiError as err:
            if err.code == 404:
                return "gone"
            if err.code == 400:
                return "waiting"
            raise
        return "done"

    def print_tail(self, taskrun: Obj, pod: str) -> bool:
        """The tail kept in status, said to be one; False when status keeps none for ``pod``."""
        logs = (taskrun.get("status") or {}).get("logs") or {}
        if logs.get("tail") is None or (logs.get("pod") and logs.get("pod") != pod):
            self.err.write(f"(pod {pod} is gone and status keeps no log tail for it)\n")
            return False
        more = ", the log was longer" if logs.get("truncated") else ""
        lines = logs.get("tailLines", 0)
        self.err.write(
            f"(pod {pod} is gone: the last {lines} line{'' if lines == 1 else 's'} kept in "
            f"status.logs.tail{more})\n"
        )
        self.out.write(logs["tail"])
        if not logs["tail"].endswith("\n"):
            self.out.write("\n")
        self.out.flush()
        return True

    def ack_logs(self, taskrun: Obj) -> None:
        """Let the controller apply the finish action now that the log was read."""
        annotations = taskrun["metadata"].get("annotations") or {}
        if annotations.get(ANNOTATION_HOLD_POD) != "true":
            return
        with contextlib.suppress(ApiError):
            self.client.patch(
                self.namespace,
                taskrun["metadata"]["name"],
                {"metadata": {"annotations": {ANNOTATION_LOGS_ACKED: "true"}}},
            )


def default_container(taskrun: Obj) -> str:
    spec, status = taskrun.get("spec") or {}, taskrun.get("status") or {}
    return str(
        (status.get("logs") or {}).get("container")
        or spec.get("baseContainerName")
        or DEFAULT_BASE_CONTAINER_NAME
    )
