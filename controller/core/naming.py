"""Names, labels and annotations that tie a pod to its TaskRun."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

GROUP = "taskrun.dev"

LABEL_NAME = "taskrun.dev/name"
LABEL_ATTEMPT = "taskrun.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "taskrun-controller"
ANNOTATION_UID = "taskrun.dev/uid"

MAX_NAME_LEN = 63
MAX_LABEL_LEN = 63

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Same pattern as KPO's make_safe_label_value: strip non-alphanumerics at both ends,
# drop every character a label value may not hold.
_UNSAFE_LABEL = re.compile(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$")


def is_dns_label(value: str) -> bool:
    """True if ``value`` is an RFC 1123 DNS label (what a pod's hostname must be)."""
    return len(value) <= MAX_NAME_LEN and bool(_DNS_LABEL.match(value))


def pod_name(taskrun_name: str, attempt: int) -> str:
    """The pod name of one attempt (from 1): ``<name>-<attempt>``, cut and hashed past 63 chars.

    Deterministic, so a second create of the same attempt is a 409, never a second pod.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    suffix = f"-{attempt}"
    plain = f"{taskrun_name}{suffix}"
    if is_dns_label(plain):
        return plain
    # TaskRun names are DNS subdomains (up to 253 chars, dots allowed); the pod name also
    # becomes the hostname, so it must be a DNS label. The hash of the full name keeps two
    # names that share a cut prefix (or differ only in '.' vs '-') apart.
    digest = hashlib.sha256(taskrun_name.encode()).hexdigest()[:6]
    keep = MAX_NAME_LEN - len(suffix) - len(digest) - 1
    head = re.sub(r"[^a-z0-9-]", "-", taskrun_name.lower())[:keep].strip("-")
    return f"{head}-{digest}{suffix}" if head else f"{digest}{suffix}"


def make_safe_label_value(value: str) -> str:
    """Make ``value`` a valid label value exactly as KPO does (``pod_generator``).

    Unchanged when already valid; otherwise the cleaned value cut to 53 chars, ``-`` and
    the first 9 hex of the md5 of the original.
    """
    safe = _UNSAFE_LABEL.sub("", value)
    if len(safe) > MAX_LABEL_LEN or safe != value:
        digest = hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()[:9]
        safe = safe[: MAX_LABEL_LEN - len(digest) - 1] + "-" + digest
    return safe


def pod_labels(taskrun_name: str, attempt: int) -> dict[str, str]:
    """The labels the controller puts on every pod it creates."""
    return {
        LABEL_NAME: make_safe_label_value(taskrun_name),
        LABEL_ATTEMPT: str(attempt),
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def pod_selector(taskrun_name: str) -> str:
    """Label selector matching every attempt's pod of one TaskRun."""
    return f"{LABEL_NAME}={make_safe_label_value(taskrun_name)},{LABEL_MANAGED_BY}={MANAGED_BY}"


def owner_uid(pod: Mapping[str, Any]) -> str | None:
    """The uid of the TaskRun that controls ``pod``, or None if no TaskRun does.

    A 409 on create is resolved with it: same uid as ours -> adopt, else PodNameConflict.
    """
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs:
        if (
            isinstance(ref, Mapping)
            and ref.get("controller")
            and ref.get("kind") == "TaskRun"
            and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")
        ):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None
