"""controller.k8s.taskrun_gone: only the TaskRun's own NotFound ends a reconcile quietly."""

from __future__ import annotations

import json

import pytest

from controller.k8s import ApiError, _api_error, taskrun_gone
from taskrun.api import GROUP, PLURAL


def status(code: int, reason: str, details: dict | None) -> bytes:
    body: dict = {"kind": "Status", "code": code, "reason": reason, "message": "m"}
    if details is not None:
        body["details"] = details
    return json.dumps(body).encode()


OWN = {"name": "run", "group": GROUP, "kind": PLURAL}


@pytest.mark.parametrize(
    ("data", "code", "gone"),
    [
        (status(404, "NotFound", OWN), 404, True),
        # kube-apiserver's answer for a resource it does not serve (the CRD deleted).
        (status(404, "NotFound", {}), 404, False),
        (status(404, "NotFound", None), 404, False),
        (b"404 page not found", 404, False),
        (status(404, "NotFound", {**OWN, "name": "other"}), 404, False),
        (status(404, "NotFound", {**OWN, "kind": "pods", "group": ""}), 404, False),
        (status(404, "NotFound", {**OWN, "group": "other.example.com"}), 404, False),
        (status(403, "Forbidden", OWN), 403, False),
        (status(409, "Conflict", OWN), 409, False),
    ],
)
def test_only_the_runs_own_not_found_counts(data: bytes, code: int, gone: bool) -> None:
    err = _api_error(code, data)
    assert taskrun_gone(err, "run") is gone, (code, data)


def test_an_error_without_a_body_has_no_details() -> None:
    assert ApiError(404, "NotFound", "x").details == {}
