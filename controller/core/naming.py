"""Names, labels and annotations that tie a pod to its TaskRun."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from taskrun.api import (
    ANNOTATION_UID,
    GROUP,
    KIND,
    LABEL_ATTEMPT,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGED_BY,
)

MAX_NAME_LEN = 63
MAX_LABEL_LEN = 63

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Same pattern as KPO's make_safe_label_value: strip non-alphanumerics at both ends,
# drop every character a label value may not hold.
_UNSAFE_LABEL = re.compile(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$")


def is_dns_label(value: str) -> bool:
    """True if ``value`` is an RFC 1123 DNS label (what a pod's hostname must be)."""
    return len(value) <= MAX_NAME_LEN and bool(_DNS_LABEL.match(value))


# Hex digits of the full name's sha256 in a shortened pod name: 48 bits, so even a namespace
# with a million long names that share their first 40 characters sees no collision.
HASH_HEX = 12
# A shortened name ends "--<attempt>": the part before the attempt ends with "-", which no
# TaskRun name does (DNS subdomains end alphanumeric), so no plain "<name>-<attempt>" equals it.
HASHED_SEPARATOR = "--"


def pod_name(taskrun_name: str, attempt: int) -> str:
    """The pod name of one attempt (from 1): ``<name>-<attempt>``, or shortened past 63 chars.

    A shortened name is ``<head>-<hash>--<attempt>``: the double hyphen before the attempt
    keeps it apart from every plain name, the hash of the full name apart from other
    shortened names. Deterministic, so a second create of the same attempt is a 409.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    plain = f"{taskrun_name}-{attempt}"
    if is_dns_label(plain):
        return plain
    # TaskRun names are DNS subdomains (up to 253 chars, dots allowed); the pod name also
    # becomes the hostname, so it must be a DNS label.
    suffix = f"{HASHED_SEPARATOR}{attempt}"
    digest = hashlib.sha256(taskrun_name.encode()).hexdigest()[:HASH_HEX]
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


def owner_uid(pod: Mapping[str, Any]) -> str | None:
    """The uid of the TaskRun that controls ``pod``, or None if no TaskRun does.

    A 409 on create is resolved with it: same uid as ours -> adopt, else PodNameConflict.
    """
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs:
        if (
            isinstance(ref, Mapping)
            and ref.get("controller")
            and ref.get("kind") == KIND
            and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")
        ):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def owns(pod: Mapping[str, Any], taskrun_uid: str | None) -> bool:
    """True when ``pod`` is this TaskRun's own: controlled by its uid, and annotated with it.

    Anything else of the name (no controller ownerReference, another owner's uid: a pod
    made ahead of time, or left by a TaskRun deleted with ``--cascade=orphan``) is never
    adopted: not read for results, not deleted.
    """
    if not taskrun_uid:
        return False
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return owner_uid(pod) == taskrun_uid and annotations.get(ANNOTATION_UID) == taskrun_uid


def conflict_message(pod: Mapping[str, Any], taskrun_uid: str | None) -> str:
    """Why a pod of the TaskRun's pod name is not its own, naming the pod and its owner."""
    meta = pod.get("metadata") or {}
    owner = owner_uid(pod)
    held = f"controlled by TaskRun uid {owner}" if owner else "controlled by no TaskRun"
    return (
        f"pod {meta.get('namespace', '')}/{meta.get('name', '')} already exists and is not"
        f" this TaskRun's (uid {taskrun_uid}): it is {held}; it is left alone,"
        " and its contents are not read"
    )
