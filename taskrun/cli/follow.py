"""Following a TaskRun to its end: a watch in a thread, the pod's log, a progress line."""

from __future__ import annotations

import codecs
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
    ANNOTATION_LOGS_FROM_STATUS,
    DEFAULT_BASE_CONTAINER_NAME,
    Phase,
    logs_in_status,
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
        # Per pod: the whole lines printed of its log and the bytes printed after them.
        self.printed: dict[str, tuple[int, bytes]] = {}

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
        if phase in render.FINISHED and self.print_rest_from_status(taskrun, name):
            streamed.add(pod)
            return
        outcome = self.stream_log(pod, name, follow=True)
        if outcome == "gone" or (outcome == "waiting" and phase in render.FINISHED):
            self.print_tail(taskrun, pod)
            streamed.add(pod)
        elif outcome == "done":
            streamed.add(pod)

    def stream_log(self, pod: str, container: str, *, follow: bool) -> str:
        """'done' after the log's end, 'gone' if the pod is gone, 'waiting' before it runs."""
        lines, partial = self.printed.get(pod, (0, b""))
        try:
            for chunk in self.client.log(self.namespace, pod, container, follow=follow):
                if b"\n" in chunk:
                    lines, partial = lines + chunk.count(b"\n"), chunk.rpartition(b"\n")[2]
                else:
                    partial += chunk
                self.printed[pod] = (lines, partial)
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
        # All of it is printed: a whole log in the status is not printed again at the end.
        kept = logs["tail"].encode()
        self.printed[pod] = (kept.count(b"\n"), kept.rpartition(b"\n")[2])
        if not logs["tail"].endswith("\n"):
            self.out.write("\n")
        self.out.flush()
        return True

    def print_rest_from_status(self, taskrun: Obj, container: str) -> bool:
        """When the finished run's status holds the whole log of ``container`` in its last
        pod (taskrun.api.handover), print what was not printed of it yet; False when the
        pod's log is to be read (and acknowledged) instead."""
        status = taskrun.get("status") or {}
        logs = status.get("logs") or {}
        if not logs_in_status(taskrun) or logs.get("tail") is None:
            return False
        if logs.get("container") not in (None, container):
            return False
        pod = str(status["podName"])
        lines, partial = self.printed.get(pod, (0, b""))
        rest = unprinted(logs["tail"], lines, partial)
        if rest:
            self.out.buffer.write(rest) if hasattr(self.out, "buffer") else self.out.write(
                rest.decode(errors="replace")
            )
            self.out.flush()
            whole = lines + rest.count(b"\n")
            self.printed[pod] = (whole, (partial + rest).rpartition(b"\n")[2])
        return True

    def end_logs(self, taskrun: Obj, container: str | None = None) -> None:
        """After the run's end: the rest of its log from the status when the status holds
        it whole (the controller holds no pod for an ack then), else the ack."""
        if not self.print_rest_from_status(taskrun, container or default_container(taskrun)):
            self.ack_logs(taskrun)

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


def unprinted(tail: str, lines: int, partial: bytes) -> bytes:
    """What a pod's log read would still print of a whole log held as text (status.logs.tail)
    after ``lines`` whole lines and then ``partial`` (bytes of the next line) were printed.

    The tail is the log decoded with U+FFFD for invalid bytes; lines split at "\\n", which is
    ASCII and never part of an invalid sequence, so whole lines are counted, not bytes.
    """
    data = tail.encode()
    if lines > 0:
        parts = data.split(b"\n", lines)
        data = parts[lines] if len(parts) > lines else b""
    if partial:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        held = decoder.decode(partial).encode()
        if data.startswith(held):
            data = data[len(held) :]
            # The first bytes of a character the stream cut: print the rest of it.
            pending = decoder.getstate()[0]
            if pending and data.startswith(pending):
                data = data[len(pending) :]
    return data


def logged_containers(spec: Obj) -> list[str]:
    """The containers status.logs covers: spec.containerLogs, or the base container."""
    if spec.get("getLogs") is False:
        return []
    return list(spec.get("containerLogs") or [base_container(spec)])


def base_container(spec: Obj) -> str:
    return str(spec.get("baseContainerName") or DEFAULT_BASE_CONTAINER_NAME)


def log_annotations(spec: Obj) -> dict[str, str]:
    """The logs hand-over a following `run` asks for (taskrun.api.handover): the hold, and
    the log from the status when the one container it shows (the base container) is
    exactly what status.logs covers."""
    annotations = {ANNOTATION_HOLD_POD: "true"}
    if logged_containers(spec) == [base_container(spec)]:
        annotations[ANNOTATION_LOGS_FROM_STATUS] = "true"
    return annotations


def default_container(taskrun: Obj) -> str:
    spec, status = taskrun.get("spec") or {}, taskrun.get("status") or {}
    return str(
        (status.get("logs") or {}).get("container")
        or spec.get("baseContainerName")
        or DEFAULT_BASE_CONTAINER_NAME
    )
