"""Container logs kept by the simulated kubelet, read the way pods/log reads them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone


def rfc3339nano(ns: int) -> str:
    """Format nanoseconds since the epoch as the kubelet does for `--timestamps`."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    # Fixed nine digits: the kubelet's timeFormatOut is RFC3339NanoFixed.
    return f"{stamp}.{frac:09d}Z"


@dataclass
class _Stream:
    entries: list[tuple[int, bytes]] = field(default_factory=list)
    closed: bool = False
    # Replaced after each change so a follower awaits exactly the next one.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


Key = tuple[str, str, str]


def split_lines(data: bytes) -> list[bytes]:
    """Split output into lines the way the container runtime does: only at \\n."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


class LogStore:
    """Per (namespace, pod, container): append-only lines with their timestamps."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._streams: dict[Key, _Stream] = {}
        # Container names per pod, so dropping a pod's logs does not scan every stream.
        self._by_pod: dict[tuple[str, str], dict[str, None]] = {}
        self._clock_ns = clock_ns

    def open(self, namespace: str, pod: str, container: str) -> None:
        """Make the container known (an empty log) once it has started."""
        self._stream(namespace, pod, container)

    def append(self, namespace: str, pod: str, container: str, data: bytes) -> None:
        """Append output; like the container runtime, one entry per line."""
        stream = self._stream(namespace, pod, container)
        if stream.closed or not data:
            return
        now = self._clock_ns()
        entries = stream.entries
        if entries and not entries[-1][1].endswith(b"\n"):
            # A line written in pieces stays one line, stamped when it began.
            head, newline, data = data.partition(b"\n")
            ts, line = entries[-1]
            entries[-1] = (ts, line + head + newline)
        if data:
            entries.extend((now, line) for line in split_lines(data))
        stream.notify()

    def close(self, namespace: str, pod: str, container: str) -> None:
        """The container terminated: followers end after the last line."""
        stream = self._stream(namespace, pod, container)
        if not stream.closed:
            stream.closed = True
            stream.notify()

    def _stream(self, namespace: str, pod: str, container: str) -> _Stream:
        stream = self._streams.get((namespace, pod, container))
        if stream is None:
            stream = self._streams[(namespace, pod, container)] = _Stream()
            self._by_pod.setdefault((namespace, pod), {})[container] = None
        return stream

    def forget(self, namespace: str, pod: str) -> None:
        """The pod object is gone: drop its logs, as the kubelet does."""
        for container in self._by_pod.pop((namespace, pod), {}):
            stream = self._streams.pop((namespace, pod, container))
            stream.closed = True
            stream.notify()

    def containers(self, namespace: str, pod: str) -> list[str]:
        """Names of the containers of a pod that have a log."""
        return list(self._by_pod.get((namespace, pod), {}))

    def is_closed(self, namespace: str, pod: str, container: str) -> bool:
        """Whether the container's log has ended (raises KeyError if unknown)."""
        return self._streams[(namespace, pod, container)].closed

    def _select(
        self,
        stream: _Stream,
        tail_lines: int | None,
        since_seconds: float | None,
    ) -> list[tuple[int, bytes]]:
        entries = stream.entries
        if since_seconds is not None:
            cutoff = self._clock_ns() - int(since_seconds * 1e9)
            entries = [e for e in entries if e[0] >= cutoff]
        if tail_lines is not None:
            entries = entries[-tail_lines:] if tail_lines > 0 else []
        return entries

    @staticmethod
    def _render(entries: list[tuple[int, bytes]], timestamps: bool) -> bytes:
        if not timestamps:
            return b"".join(line for _, line in entries)
        return b"".join(rfc3339nano(ts).encode() + b" " + line for ts, line in entries)

    def read(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        timestamps: bool = False,
        since_seconds: float | None = None,
    ) -> bytes:
        """The log as pods/log returns it; KeyError if the container has no log."""
        stream = self._streams[(namespace, pod, container)]
        data = self._render(self._select(stream, tail_lines, since_seconds), timestamps)
        return data if limit_bytes is None else data[:limit_bytes]

    async def follow(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        timestamps: bool = False,
        since_seconds: float | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield the existing log, then new output, until the container terminated."""
        stream = self._streams[(namespace, pod, container)]
        selected = self._select(stream, tail_lines, since_seconds)
        remaining = limit_bytes
        chunk = self._render(selected, timestamps)
        # Where the next unread byte is: entry index and offset in that entry (the
        # last entry can still grow while its line is incomplete).
        index = len(stream.entries)
        offset = 0
        if stream.entries and not stream.entries[-1][1].endswith(b"\n") and selected:
            index, offset = index - 1, len(stream.entries[-1][1])
        first = True
        while True:
            # The first chunk comes at once, even empty: a server can answer (send its
            # headers) before a quiet container prints anything.
            if chunk or first:
                first = False
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                yield chunk
                if remaining is not None and remaining <= 0:
                    return
            if not self._unread(stream, index, offset):
                if stream.closed:
                    return
                await stream.changed.wait()
            chunk, index, offset = self._since(stream, index, offset, timestamps)

    @staticmethod
    def _unread(stream: _Stream, index: int, offset: int) -> bool:
        if index < len(stream.entries) - 1:
            return True
        return index == len(stream.entries) - 1 and offset < len(stream.entries[index][1])

    @staticmethod
    def _since(
        stream: _Stream, index: int, offset: int, timestamps: bool
    ) -> tuple[bytes, int, int]:
        parts = []
        for ts, line in stream.entries[index:]:
            if offset == 0 and timestamps:
                parts.append(rfc3339nano(ts).encode() + b" ")
            parts.append(line[offset:])
            offset = 0
        last = len(stream.entries) - 1
        if last >= 0 and not stream.entries[last][1].endswith(b"\n"):
            return b"".join(parts), last, len(stream.entries[last][1])
        return b"".join(parts), len(stream.entries), 0
