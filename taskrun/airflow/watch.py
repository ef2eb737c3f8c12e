"""Watching one TaskRun, without I/O: the algorithm the sync and the async client share.

As h11 and httpcore do for HTTP, the state machine decides and the drivers (TaskRunApi for
the operator, AsyncTaskRunApi for the trigger) do the requests, the sleeps and the stream
reading. A driver starts with ``start()`` and performs what it gets back:

- ``Read``: read the TaskRun, feed it with ``got(taskrun)``;
- ``Watch``: open a watch with ``query``; feed each line with ``line(raw)`` (None: keep
  reading; ``Emit``: hand the version on and keep reading; anything else: close the
  stream and perform it), then ``ended(now)`` or ``broke(reason, now)``; call
  ``opened(now)`` before sending it; a refused open goes to ``refused(status, reason,
  now)`` (None: not a watch matter, raise it);
- ``Emit``: a version of the TaskRun for the caller, then ``next()``;
- ``Sleep``: pause, then ``next()``.

The rules: resume from the last version seen (events and bookmarks); 410 Gone (on open or
in the stream) reads the TaskRun again and resumes from it; 504 (the server's cache is
behind) re-opens up to WATCH_RETRIES times in a row; a broken or ended stream re-opens, a
second apart at the least; DELETED, or a version with another uid (the TaskRun was
deleted and another made under its name), is TaskRunGone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TaskRun = dict[str, Any]

# Server-side watch timeout. A watch that ends is re-opened from the last version it
# delivered (events and bookmarks), so this only bounds how often that costs a request; 10
# minutes keeps an hour-long task at six watches. The client gives up on a silent
# connection WATCH_TIMEOUT_SECONDS + WATCH_GRACE_SECONDS after the last byte.
WATCH_TIMEOUT_SECONDS = 600
WATCH_GRACE_SECONDS = 30
# A watch the server keeps refusing with 504 (its cache is behind the version asked for,
# which can happen right after a create) is re-tried this many times, a second apart.
WATCH_RETRIES = 5
# A server that ends every watch at once is not hammered: re-opens are this far apart.
MIN_WATCH_SECONDS = 1.0


class TaskRunGone(Exception):
    """The TaskRun was deleted while we waited for it."""

    def __init__(self, name: str, namespace: str, replaced: bool = False) -> None:
        detail = " (another TaskRun now has its name)" if replaced else ""
        super().__init__(f"TaskRun {namespace}/{name} was deleted{detail}")
        self.name = name
        self.namespace = namespace


class WatchRefused(Exception):
    """The server kept refusing the watch with 504."""


@dataclass(frozen=True)
class Read:
    """Read the TaskRun; feed it to ``got``."""


@dataclass(frozen=True)
class Watch:
    """Open a watch with these query parameters (the client's own names)."""

    query: dict[str, Any]


@dataclass(frozen=True)
class Emit:
    """A version of the TaskRun for the caller."""

    taskrun: TaskRun


@dataclass(frozen=True)
class Sleep:
    """Pause this long, then ``next()``."""

    seconds: float


Action = Read | Watch | Emit | Sleep
ErrorFactory = Callable[[int | None, str | None], Exception]


def resource_version(taskrun: TaskRun) -> str | None:
    version = (taskrun.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


def _uid(taskrun: TaskRun) -> str | None:
    uid = (taskrun.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


@dataclass
class TaskRunWatch:
    """The state of watching one TaskRun.

    ``known``: a version already at hand (emitted first, watched from); else
    ``version``: watch from it without a read; else the TaskRun is read first.
    ``error``: makes the exception of an ERROR event the server sends (the driver's
    ApiException type).
    """

    name: str
    namespace: str
    error: ErrorFactory
    known: TaskRun | None = None
    version: str | None = None
    uid: str | None = None
    _refusals: int = 0
    _opened: float = 0.0

    def start(self) -> Action:
        if self.known is not None:
            return self._seen(self.known)
        if self.version is not None:
            return self._watch()
        return Read()

    def got(self, taskrun: TaskRun) -> Action:
        """The TaskRun as read."""
        return self._seen(taskrun)

    def next(self) -> Action:
        """After an Emit or a Sleep outside a stream: what now."""
        return self._watch()

    def opened(self, now: float) -> None:
        """The watch request is being sent (``now``: a monotonic clock)."""
        self._opened = now

    def line(self, raw: bytes | str, now: float) -> Action | None:
        """One line of the watch stream."""
        if not raw.strip():
            return None
        event = json.loads(raw)
        kind, obj = event.get("type"), event.get("object")
        if kind == "ERROR":
            status = obj if isinstance(obj, dict) else {}
            code, message = status.get("code"), status.get("message")
            if code == 410:
                return Read()
            if code == 504:
                return self._refused_504(f"watch refused with 504: {message}", now)
            raise self.error(code, message)
        if not isinstance(obj, dict):
            return None
        self.version = resource_version(obj) or self.version
        if kind == "DELETED":
            raise TaskRunGone(self.name, self.namespace)
        if kind in ("ADDED", "MODIFIED"):
            self._check_uid(obj)
            return Emit(obj)
        return None  # BOOKMARK: only its version counts

    def ended(self, now: float) -> Action:
        """The server closed the stream (its timeout): resume."""
        self._refusals = 0
        return self._pause(now)

    def broke(self, reason: str, now: float) -> Action:
        """The connection broke or went silent past its read timeout: resume."""
        log.info("Watch of TaskRun %s/%s broke (%s); resuming", self.namespace, self.name, reason)
        return self._pause(now)

    def refused(self, status: int | None, reason: str | None, now: float) -> Action | None:
        """The watch request was answered ``status``; None: not ours to handle, raise it."""
        if status == 410:
            return Read()
        if status == 504:
            return self._refused_504(f"watch refused with {status}: {reason}", now)
        return None

    # ---------------------------------------------------------------------------------

    def _seen(self, taskrun: TaskRun) -> Action:
        self._check_uid(taskrun)
        self.version = resource_version(taskrun)
        return Emit(taskrun)

    def _check_uid(self, taskrun: TaskRun) -> None:
        uid = _uid(taskrun)
        if uid is None:
            return
        if self.uid is None:
            self.uid = uid
        elif uid != self.uid:
            raise TaskRunGone(self.name, self.namespace, replaced=True)

    def _refused_504(self, message: str, now: float) -> Action:
        self._refusals += 1
        if self._refusals > WATCH_RETRIES:
            raise WatchRefused(message)
        return self._pause(now)

    def _pause(self, now: float) -> Action:
        if now - self._opened < MIN_WATCH_SECONDS:
            return Sleep(MIN_WATCH_SECONDS)
        return self._watch()

    def _watch(self) -> Watch:
        return Watch(
            {
                "field_selector": f"metadata.name={self.name}",
                "resource_version": self.version,
                "timeout_seconds": WATCH_TIMEOUT_SECONDS,
                "allow_watch_bookmarks": True,
            }
        )
