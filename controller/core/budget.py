"""The status budget: the whole status, as the API server will store it, under a size.

etcd refuses a write over 1.5 MiB and kube-apiserver encodes custom resources with Go's
encoding/json, which spends six bytes on each ``<``, ``>`` and ``&`` and on U+2028 and
U+2029, and two on a quote or a backslash: a 1 MiB result of such characters is a 6 MiB
status. The controller measures the status that way before writing it and, when it is
over the budget, cuts what is only a convenience (log tails, warnings, old messages)
before it gives up on the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taskrun.api import Reason

Obj = dict[str, Any]

# Well below etcd's 1.5 MiB, leaving room for the TaskRun's metadata and spec.
DEFAULT_MAX_STATUS_BYTES = 1024 * 1024
# The smallest budget the flag accepts: a status with no result must always fit, even
# with 101 history records (spec.retries at most 100).
MIN_MAX_STATUS_BYTES = 64 * 1024
# Messages are cut to this many characters when the status is over its budget, history
# messages to the shorter length if that is not enough.
CUT_MESSAGE_CHARS = 1024
SHORT_MESSAGE_CHARS = 128
CUT_MARK = "[...]"

_GO_SHORT = {"\b", "\f", "\n", "\r", "\t", '"', "\\"}
_GO_SIX = {"<", ">", "&", "\u2028", "\u2029"}


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as JSON the way Go's encoding/json writes it (what etcd stores).

    Compact, non-ASCII kept as UTF-8, control characters escaped (``\\n`` or ``\\u00XX``),
    and the HTML-safe escapes: ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\uXXXX``.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    extra = 5 * (text.count("<") + text.count(">") + text.count("&"))
    extra += 3 * (text.count("\u2028") + text.count("\u2029"))
    return len(text.encode("utf-8", "surrogatepass")) + extra


def char_cost(char: str) -> int:
    """Encoded bytes of one character inside a JSON string, as Go writes it."""
    if char in _GO_SIX:
        return 6
    if char in _GO_SHORT:
        return 2
    if char < " ":
        return 6
    return len(char.encode("utf-8", "surrogatepass"))


def cut_front(text: str, max_bytes: int) -> str:
    """The end of ``text`` whose encoded size is at most ``max_bytes``, from a line start.

    The tail's point is its last lines: the front goes, and a partial first line with it
    when a whole line can start the kept part.
    """
    used = 0
    start = len(text)
    while start > 0:
        cost = char_cost(text[start - 1])
        if used + cost > max_bytes:
            break
        used += cost
        start -= 1
    if start == 0:
        return text
    kept = text[start:]
    if text[start - 1] == "\n":
        return kept
    newline = kept.find("\n")
    if 0 <= newline < len(kept) - 1:
        return kept[newline + 1 :]
    return kept


def cut_message(message: Any, chars: int = CUT_MESSAGE_CHARS) -> Any:
    """``message`` cut to ``chars`` characters (and a mark), if it is longer."""
    if not isinstance(message, str) or len(message) <= chars:
        return message
    return message[:chars] + CUT_MARK


def _cut_history(history: list[Any], chars: int) -> list[Any]:
    return [
        {**r, "message": cut_message(r.get("message"), chars)}
        if isinstance(r, Mapping) and "message" in r
        else r
        for r in history
    ]


@dataclass(frozen=True)
class Fitted:
    """A status cut to its budget: what was cut, and whether it still does not fit."""

    status: Obj
    size: int
    cut: list[str] = field(default_factory=list)
    # Set when even the cut status is over the budget: the reason and message to end with.
    over: tuple[Reason, str] | None = None


def fit(status: Mapping[str, Any], budget: int) -> Fitted:
    """``status`` within ``budget`` encoded bytes, cutting in order what matters least.

    1. the log tails (from the front, keeping the last lines; ``logs.truncated`` set and
       ``logs.complete`` cleared),
    2. the warnings (oldest first),
    3. the history records' messages, then the run's own message (to 1024 characters).

    A status still over the budget keeps what it has and says why in ``over``:
    ResultTooLarge when it carries a result (dropping the result is then the caller's
    decision), StatusTooLarge otherwise. History records are never dropped: the attempt
    in progress is counted from them.
    """
    current: Obj = dict(status)
    size = encoded_size(current)
    cut: list[str] = []
    if size <= budget:
        return Fitted(current, size)

    logs = current.get("logs")
    if isinstance(logs, Mapping) and logs.get("tail"):
        tail = str(logs["tail"])
        tail_size = encoded_size(tail)
        new_tail = tail
        # The cut also changes tailLines and truncated: measure again, cut again if need be.
        while size > budget and new_tail:
            keep = max(0, encoded_size(new_tail) - 2 - (size - budget) - 32)
            new_tail = cut_front(new_tail, keep)
            new_logs = {**logs, "tail": new_tail, "truncated": True, "complete": False}
            new_logs["tailLines"] = len(new_tail.splitlines())
            if not new_tail:
                new_logs.pop("tail")
            current["logs"] = new_logs
            size = encoded_size(current)
        cut.append(f"log tail {tail_size} -> {encoded_size(new_tail)} bytes")

    warnings = list(current.get("warnings") or [])
    dropped = 0
    while size > budget and warnings:
        warnings.pop(0)
        dropped += 1
        if warnings:
            current["warnings"] = warnings
        else:
            current.pop("warnings", None)
        size = encoded_size(current)
    if dropped:
        cut.append(f"{dropped} warning(s)")

    for chars in (CUT_MESSAGE_CHARS, SHORT_MESSAGE_CHARS):
        if size > budget and current.get("history"):
            current["history"] = _cut_history(list(current["history"]), chars)
            cut.append(f"history messages to {chars} characters")
            size = encoded_size(current)

    if size > budget and isinstance(current.get("message"), str):
        message = cut_message(current["message"])
        if message != current["message"]:
            current["message"] = message
            current["conditions"] = [
                {**c, "message": cut_message(c.get("message"))}
                for c in current.get("conditions") or []
            ]
            cut.append("message")
            size = encoded_size(current)

    if size <= budget:
        return Fitted(current, size, cut)
    if current.get("result") is not None:
        result_size = encoded_size(current["result"])
        over = (
            Reason.RESULT_TOO_LARGE,
            f"the result ({current.get('resultSize')} bytes, {result_size} as the API server"
            f" encodes it) makes the status {size} bytes, over the status budget of {budget}"
            " bytes (--max-status-bytes)",
        )
    else:
        over = (
            Reason.STATUS_TOO_LARGE,
            f"the status is {size} bytes as the API server encodes it, over the status"
            f" budget of {budget} bytes (--max-status-bytes)",
        )
    return Fitted(current, size, cut, over)
