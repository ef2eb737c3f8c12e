"""Decode the xcom sidecar's hand-over (docs/architecture.md, "Results").

The native sidecar writes one of ``none``, ``inline:<bytes>`` or ``log:<size>:<sha256>``
to its termination message; for ``log:`` the result is the sidecar's whole log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskrun.api import XCOM_SIDECAR_NAME, Reason

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024


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

# Exec mode (KPO's sidecar): the same commands KPO runs in airflow-xcom-sidecar.
EMPTY_MARKER = "__airflow_xcom_result_empty__"
EXEC_READ_COMMAND = [
    "sh",
    "-c",
    "if [ -s /airflow/xcom/return.json ]; then cat /airflow/xcom/return.json;"
    f" else echo {EMPTY_MARKER}; fi",
]
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
        return check(message[len("inline:") :].encode(), max_bytes)
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
    if len(data) != handover.size or hashlib.sha256(data).hexdigest() != handover.sha256:
        return Result(
            reason=Reason.RESULT_INVALID,
            message=(
                f"the result read from the {XCOM_SIDECAR_NAME} log ({len(data)} bytes) does not"
                f" match the announced {handover.size} bytes and sha256"
            ),
        )
    return check(data, max_bytes)


def from_exec(output: bytes, max_bytes: int) -> Result:
    """The result printed by EXEC_READ_COMMAND."""
    if output.strip() == EMPTY_MARKER.encode():
        return NO_RESULT
    return check(output, max_bytes)


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
            message=f"/airflow/xcom/return.json is not valid JSON: {err}",
        )
    return Result(text=text, size=len(data))


def _ignore(_: str) -> None:
    return None


def _too_large(size: int, max_bytes: int) -> Result:
    return Result(
        size=size,
        reason=Reason.RESULT_TOO_LARGE,
        message=(
            f"/airflow/xcom/return.json is {size} bytes, more than the allowed {max_bytes}"
            " bytes (--max-result-bytes)"
        ),
    )
