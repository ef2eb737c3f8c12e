"""Log tails: the last lines of a log within a byte budget, as the kubelet counts lines.

A line ends at "\\n" and nowhere else (not at "\\r", U+2028 or U+2029): that is what the
kubelet's ``tailLines`` counts, so the tail holds the lines a user asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

# The first read of a tail takes this many times its byte budget, so long last lines still
# leave room for earlier ones; a longer window is narrowed down instead (controller/k8s.py).
READ_BYTES_FACTOR = 4
# A UTF-8 character is at most four bytes: at most three continuation bytes follow its lead.
_MAX_CONTINUATION = 3


@dataclass(frozen=True)
class LogTail:
    """A log's tail: the text and whether the log had more than the tail shows."""

    text: str
    truncated: bool = False


def split_lines(data: bytes) -> list[bytes]:
    """``data`` as lines ending in "\\n" (the last one may not), split at "\\n" only."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def count_lines(text: str) -> int:
    """How many lines ``text`` holds, as ``split_lines`` counts them."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def cut_front(data: bytes, max_bytes: int) -> bytes:
    """The last ``max_bytes`` of ``data`` or fewer, never starting inside a character."""
    if len(data) <= max_bytes:
        return data
    start = len(data) - max(max_bytes, 0)
    for _ in range(_MAX_CONTINUATION):
        if start < len(data) and 0x80 <= data[start] <= 0xBF:
            start += 1
    return data[start:]


def tail_of(data: bytes, lines: int, max_bytes: int) -> LogTail:
    """The last ``lines`` lines of ``data`` (a whole log, or a whole tailLines window of
    ``lines + 1`` lines) within ``max_bytes``.

    Whole lines are dropped from the front first; a last line longer than the budget alone
    is cut at its front, at a character boundary.
    """
    kept = split_lines(data)
    truncated = len(kept) > lines
    kept = kept[-lines:] if lines > 0 else []
    size = sum(len(line) for line in kept)
    while len(kept) > 1 and size > max_bytes:
        size -= len(kept.pop(0))
        truncated = True
    if kept and size > max_bytes:
        kept[0] = cut_front(kept[0], max_bytes)
        truncated = True
    return LogTail(text=b"".join(kept).decode("utf-8", "replace"), truncated=truncated)


class TailKeeper:
    """Keeps the end of a stream (one long line) in ``max_bytes``, whatever its length."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.seen = 0
        # The budget plus a character's worth, so the cut can still find a character start.
        self._keep = max_bytes + _MAX_CONTINUATION
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        self._buffer = (self._buffer + chunk)[-self._keep :]

    def tail(self) -> LogTail:
        """What was kept, as the tail of a line longer than the budget."""
        end = cut_front(self._buffer, self.max_bytes)
        return LogTail(text=end.decode("utf-8", "replace"), truncated=self.seen > len(end))
