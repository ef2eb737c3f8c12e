"""taskrun.api.handover: the one rule the controller (hold or release) and the operator (read
the pod or the status) both apply."""

from __future__ import annotations

from typing import Any

import pytest

from taskrun.api import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
    holds_pod,
    logs_in_status,
)

HOLD, ACKED, FROM_STATUS = ANNOTATION_HOLD_POD, ANNOTATION_LOGS_ACKED, ANNOTATION_LOGS_FROM_STATUS
WHOLE = {"pod": "t-2", "tail": "done\n", "truncated": False, "complete": True}


def taskrun(annotations: dict[str, str], logs: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"podName": "t-2"}
    if logs is not None:
        status["logs"] = logs
    return {"metadata": {"annotations": annotations}, "status": status}


# (annotations, status.logs) -> (logs_in_status, holds_pod)
CASES: dict[str, tuple[Any, ...]] = {
    "nothing asked": ({}, WHOLE, False, False),
    "hold only (an older reader, or several containers)": ({HOLD: "true"}, WHOLE, False, True),
    "hold, acked": ({HOLD: "true", ACKED: "true"}, WHOLE, False, False),
    "opted in, whole": ({HOLD: "true", FROM_STATUS: "true"}, WHOLE, True, False),
    "opted in, cut": (
        {HOLD: "true", FROM_STATUS: "true"}, {**WHOLE, "complete": False}, False, True,
    ),
    "opted in, an older controller wrote no complete": (
        {HOLD: "true", FROM_STATUS: "true"},
        {k: v for k, v in WHOLE.items() if k != "complete"}, False, True,
    ),
    "opted in, an earlier attempt's log": (
        {HOLD: "true", FROM_STATUS: "true"}, {**WHOLE, "pod": "t-1"}, False, True,
    ),
    "opted in, no logs yet": ({HOLD: "true", FROM_STATUS: "true"}, None, False, True),
    "opted in, not 'true'": ({HOLD: "true", FROM_STATUS: "yes"}, WHOLE, False, True),
    "complete must be the boolean": (
        {HOLD: "true", FROM_STATUS: "true"}, {**WHOLE, "complete": "true"}, False, True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_handover(case: str) -> None:
    annotations, logs, in_status, held = CASES[case]
    assert logs_in_status(taskrun(annotations, logs)) is in_status
    assert holds_pod(taskrun(annotations, logs)) is held


def test_a_taskrun_without_metadata_or_status() -> None:
    assert not logs_in_status({}) and not holds_pod({})
