"""The logs hand-over between a TaskRun's log reader and the controller: the one rule both
sides read (docs/architecture.md, "Logs hand-over").

A reader that wants the whole log sets ``ANNOTATION_HOLD_POD``; the controller keeps the
finished pod until ``ANNOTATION_LOGS_ACKED`` (or ``--max-hold-seconds``). A reader that also
set ``ANNOTATION_LOGS_FROM_STATUS`` promises to print exactly the containers status.logs
covers: when ``status.logs.complete`` says the tail is their whole, final log, the reader
prints the tail and sends no ack, and the controller deletes the pod without waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskrun.api.names import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
)


def _annotations(taskrun: Mapping[str, Any]) -> Mapping[str, Any]:
    return (taskrun.get("metadata") or {}).get("annotations") or {}


def logs_in_status(taskrun: Mapping[str, Any]) -> bool:
    """The log reader takes the log from ``status.logs.tail``: it asked to, and the tail is
    the whole log of the run's last pod.

    ``complete`` is written only by a controller that knows this rule, so a reader never
    skips the pod read (or the ack) that an older controller waits for.
    """
    if _annotations(taskrun).get(ANNOTATION_LOGS_FROM_STATUS) != "true":
        return False
    status = taskrun.get("status") or {}
    logs = status.get("logs") or {}
    pod = status.get("podName")
    return logs.get("complete") is True and pod is not None and logs.get("pod") == pod


def holds_pod(taskrun: Mapping[str, Any]) -> bool:
    """The finished pod waits for its log reader: a hold was asked for, the reader has not
    acknowledged, and the log is not handed over in the status."""
    annotations = _annotations(taskrun)
    return (
        annotations.get(ANNOTATION_HOLD_POD) == "true"
        and annotations.get(ANNOTATION_LOGS_ACKED) != "true"
        and not logs_in_status(taskrun)
    )
