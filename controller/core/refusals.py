"""What an API server's refusal of a pod create means for the run: final, or worth retrying."""

from __future__ import annotations

from taskrun.api import Reason


def create_refusal(status: int, message: str) -> tuple[Reason, str] | None:
    """A pod create the cluster will never accept, as a final reason; None when worth retrying.

    400/422 are a bad pod. A 403 from Pod Security Admission is the cluster's own policy
    and as final; other 403s (RBAC, quota) can heal and are retried with backoff.
    """
    if status in (400, 422):
        return Reason.INVALID_SPEC, f"the API server refused the pod: {message}"
    if status == 403 and "violates PodSecurity" in message:
        return (
            Reason.POLICY_DENIED,
            f"the cluster's Pod Security admission refused the pod: {message}",
        )
    return None


def create_can_heal(status: int) -> bool:
    """A pod create refused for now: shown on the TaskRun (FailedCreate) and tried again.

    403 (a missing service account, a quota, RBAC) and other 4xx; not 401 (our own
    credentials, every request fails alike), 408 and 429 (transient: the client retried).
    """
    return 400 <= status < 500 and status not in (401, 408, 409, 429)
