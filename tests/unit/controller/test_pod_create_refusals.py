"""Which pod-create errors end a TaskRun, and with which reason."""

from __future__ import annotations

import pytest

from controller.core.refusals import create_refusal
from taskrun.api.reasons import Reason

PSA = (
    'pods "r-1" is forbidden: violates PodSecurity "restricted:latest": '
    'allowPrivilegeEscalation != false (container "base" must set '
    "securityContext.allowPrivilegeEscalation=false)"
)


@pytest.mark.parametrize(
    ("status", "reason", "message", "expected"),
    [
        (
            422,
            "Invalid",
            'Pod "r-1" is invalid: spec.containers[0].image: Required value',
            Reason.INVALID_SPEC,
        ),
        (400, "BadRequest", "bad request", Reason.INVALID_SPEC),
        (403, "Forbidden", PSA, Reason.POLICY_DENIED),
        # RBAC and quota refusals can heal: retried with backoff, not final.
        (403, "Forbidden", 'pods is forbidden: User "x" cannot create resource "pods"', None),
        (403, "Forbidden", 'pods "r-1" is forbidden: exceeded quota: compute', None),
        (500, "InternalError", "etcd timeout", None),
        (429, "TooManyRequests", "slow down", None),
    ],
)
def test_refusal(status: int, reason: str, message: str, expected: Reason | None) -> None:
    refused = create_refusal(status, message)
    if expected is None:
        assert refused is None
    else:
        assert refused is not None
        assert refused[0] == expected
        assert message in refused[1]
