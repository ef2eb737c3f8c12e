"""Decode the xcom sidecar's hand-over (docs/architecture.md, "Results").

The native sidecar writes one of ``none``, ``inline:<size>:<sha256>:<bytes>``,
``log:<size>:<sha256>`` or ``unreadable:<uid>`` to its termination message; for ``log:`` the
result is the sidecar's whole log. Every path carries the file's size and sha256 and is
checked against them: the kubelet's JSON status write replaces bytes that are not UTF-8 with
U+FFFD, and a stream can arrive cut, so what was received must be shown to be the file's
bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskrun.api import XCOM_RESULT_PATH, XCOM_SIDECAR_NAME, Reason


@dataclass(frozen=True)
class Result:
    """A captured result (``text`` None: no result) or why it could not be taken."""

    text: str | None = None
    size: int = 0
    reason: Reason | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class LogHandOver:
    """The result is in the sidecar's log: ``size`` bytes with this sha256."""

    size: int
    sha256: str


NO_RESULT = Result()

# Exec mode (KPO's sidecar): KPO's read command, with the file's size and sha256 printed
# first (busybox's wc and sha256sum), so the controller can stop reading at the cap and
# check that what arrived is the whole file.
EMPTY_MARKER = "__airflow_xcom_result_empty__"
UNREADABLE_MARKER = "__taskrun_xcom_result_unreadable__"
EXEC_READ_COMMAND = [
    "sh",
    "-c",
    f"if [ -s {XCOM_RESULT_PATH} ]; then if [ -r {XCOM_RESULT_PATH} ];"
    f" then wc -c {XCOM_RESULT_PATH} && sha256sum {XCOM_RESULT_PATH} && cat {XCOM_RESULT_PATH};"
    f" else echo {UNREADABLE_MARKER}; fi; else echo {EMPTY_MARKER}; fi",
]
# The two header lines: "<size> <path>" and "<sha256>  <path>".
EXEC_HEADER_MAX_BYTES = 256
_EXEC_HEADER = re.compile(rb"\s*(\d+)[ \t][^\n]*\n([0-9a-f]{64})[ \t][^\n]*\n")
_INLINE = re.compile(r"inline:(\d+):([0-9a-f]{64}):(.*)\Z", re.DOTALL)
EXEC_KILL_COMMAND = ["sh", "-c", "kill -s SIGINT 1"]


def sidecar_status(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The container status of the xcom sidecar (native: an init container)."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for item in status.get(key) or []:
            if item.get("name") == XCOM_SIDECAR_NAME:
                return item
    return None


def termination_message(pod: Mapping[str, Any]) -> str | None:
    """The sidecar's termination message once it has terminated, else None."""
    status = sidecar_status(pod)
    if status is None:
        return None
    for key in ("state", "lastState"):
        terminated = (status.get(key) or {}).get("terminated")
        if terminated is not None:
            return str(terminated.get("message") or "")
    return None


def decode(message: str | None, max_bytes: int) -> Result | LogHandOver:
    """What the sidecar's termination message says: a Result, or read the log."""
    if message is None:
        return Result(
            reason=Reason.RESULT_INVALID,
            message=f"the {XCOM_SIDECAR_NAME} container did not hand a result over",
        )
    if message.strip() in ("", "none"):
        return NO_RESULT
    if message.startswith("inline:"):
        return _inline(message, max_bytes)
    if message.startswith("unreadable:"):
        return unreadable(message.removeprefix("unreadable:"))
    if message.startswith("log:"):
        parts = message.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and len(parts[2]) == 64:
            size = int(parts[1])
            if size > max_bytes:
                return _too_large(size, max_bytes)
            return LogHandOver(size=size, sha256=parts[2].lower())
    return Result(
        reason=Reason.RESULT_INVALID,
        message=f"unexpected hand-over from {XCOM_SIDECAR_NAME}: {message[:80]!r}",
    )


def from_log(data: bytes, handover: LogHandOver, max_bytes: int) -> Result:
    """The result read from the sidecar's log, checked against the announced size and hash."""
    return verified(
        data, handover.size, handover.sha256, max_bytes, f"read from the {XCOM_SIDECAR_NAME} log"
    )


def exec_read_limit(max_bytes: int) -> int:
    """How much of EXEC_READ_COMMAND's output to read: the header and the largest result."""
    return max_bytes + EXEC_HEADER_MAX_BYTES


def from_exec(output: bytes, max_bytes: int) -> Result:
    """The result printed by EXEC_READ_COMMAND (read up to ``exec_read_limit`` + 1 bytes)."""
    if output.strip() == EMPTY_MARKER.encode():
        return NO_RESULT
    if output.startswith(UNREADABLE_MARKER.encode()):
        return unreadable(None)
    header = _EXEC_HEADER.match(output)
    if header is None:
        return Result(
            reason=Reason.RESULT_INVALID,
            message=(
                f"the {XCOM_SIDECAR_NAME} container did not print the result's size and sha256"
                f" before it (wc -c, sha256sum): {output[:80]!r}"
            ),
        )
    size, sha256 = int(header[1]), header[2].decode()
    if size > max_bytes:
        return _too_large(size, max_bytes)
    return verified(output[header.end() :], size, sha256, max_bytes, "read with pods/exec")


def unreadable(uid: str | None) -> Result:
    """The sidecar found the result but its user may not read it."""
    user = f" (uid {uid.strip()[:20]})" if uid and uid.strip() else ""
    return Result(
        reason=Reason.RESULT_INVALID,
        message=(
            f"{XCOM_RESULT_PATH} exists but the {XCOM_SIDECAR_NAME} container{user}"
            " may not read it: write it readable by others (mode 0644) or set the base"
            " container's runAsUser, which the sidecar then shares (docs/security.md)"
        ),
    )


def verified(data: bytes, size: int, sha256: str, max_bytes: int, how: str) -> Result:
    """``data`` checked to be the announced ``size`` bytes with this sha256, then ``check``."""
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        return Result(
            reason=Reason.RESULT_INVALID,
            message=(
                f"the result {how} ({len(data)} bytes) is not the file's {size} bytes with"
                f" sha256 {sha256[:16]}...: it was cut or altered on the way"
                " (a file that is not UTF-8 is altered by the kubelet's status write)"
            ),
        )
    return check(data, max_bytes)


def _inline(message: str, max_bytes: int) -> Result:
    match = _INLINE.match(message)
    if match is None:
        return Result(
            reason=Reason.RESULT_INVALID,
            message=(
                f"the inline hand-over from {XCOM_SIDECAR_NAME} carries no size and sha256"
                f" (a sidecar older than this controller?): {message[:80]!r}"
            ),
        )
    # surrogatepass: a lone surrogate from a JSON escape gives bytes that fail the hash.
    data = match[3].encode("utf-8", "surrogatepass")
    return verified(
        data, int(match[1]), match[2], max_bytes, f"in the {XCOM_SIDECAR_NAME} termination message"
    )


def check(data: bytes, max_bytes: int) -> Result:
    """Apply the size cap and the JSON check to the raw bytes of return.json."""
    if not data:
        return NO_RESULT
    if len(data) > max_bytes:
        return _too_large(len(data), max_bytes)
    try:
        text = data.decode("utf-8")
        # Only validity matters; not converting numbers also lifts Python's 4300-digit cap.
        json.loads(text, parse_int=_ignore, parse_float=_ignore)
    except (UnicodeDecodeError, ValueError) as err:
        return Result(
            size=len(data),
            reason=Reason.RESULT_INVALID,
            message=f"{XCOM_RESULT_PATH} is not valid JSON: {err}",
        )
    return Result(text=text, size=len(data))


def _ignore(_: str) -> None:
    return None


def _too_large(size: int, max_bytes: int) -> Result:
    return Result(
        size=size,
        reason=Reason.RESULT_TOO_LARGE,
        message=(
            f"{XCOM_RESULT_PATH} is {size} bytes, more than the allowed {max_bytes}"
            " bytes (--max-result-bytes)"
        ),
    )
