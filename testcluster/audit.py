"""kube-apiserver's audit log as devcluster's request accounting.

With ``--audit-policy-file`` (realcluster/audit.py's POLICY: Metadata level) and
``--audit-log-path``, the API server writes one JSON line per request stage. This reads
them into the RequestRecords devcluster keeps, so ``requests.filter(verb=, resource=,
namespace=, user_agent=, code=)`` means the same on both clusters and write-count
assertions hold on the real one.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from devcluster.accounting import RequestLog, RequestRecord


@dataclasses.dataclass
class AuditRecord(RequestRecord):
    """A RequestRecord plus who asked: the audit log knows the authenticated user."""

    user: str = ""
    # The authorizer's answer: "allow", "forbid", or "" (not authorized yet, e.g. a 401).
    # A 403 with "allow" came from admission (a terminating namespace, a missing
    # ServiceAccount, Pod Security), not from RBAC.
    decision: str = ""


def record(event: dict[str, Any]) -> AuditRecord:
    """One audit event as the RequestRecord devcluster would have written, plus the user."""
    ref = event.get("objectRef") or {}
    uri = str(event.get("requestURI") or "")
    path, _, query = uri.partition("?")
    started = _seconds(event.get("requestReceivedTimestamp"))
    ended = _seconds(event.get("stageTimestamp")) or started
    return AuditRecord(
        user=str((event.get("user") or {}).get("username") or ""),
        decision=str((event.get("annotations") or {}).get("authorization.k8s.io/decision") or ""),
        verb=str(event.get("verb") or "").lower(),
        group=str(ref.get("apiGroup") or ""),
        version=str(ref.get("apiVersion") or ""),
        resource=str(ref.get("resource") or ""),
        subresource=str(ref.get("subresource") or ""),
        namespace=str(ref.get("namespace") or ""),
        name=str(ref.get("name") or ""),
        code=int((event.get("responseStatus") or {}).get("code") or 0),
        user_agent=str(event.get("userAgent") or ""),
        started=started,
        duration=max(0.0, ended - started),
        path=path,
        query=query,
    )


BARRIER_PREFIX = "testcluster-audit-barrier-"
BARRIER_TIMEOUT = 5.0


class AuditRequests(RequestLog):
    """The records of an audit log file, read incrementally on every access.

    kube-apiserver writes a request's ResponseComplete event as its handler returns, which
    may be after the client has the answer. ``barrier`` closes that gap: it makes a request
    of its own (a GET of a ConfigMap named BARRIER_PREFIX + token, a 404) and the records
    are read until that request is in the log, so whatever the tests saw answered before
    is in the log too. Barrier requests are not records.
    """

    def __init__(self, path: Path, barrier: Callable[[str], object] | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.barrier = barrier
        self._offset = 0
        self._partial = b""
        self._seen: set[str] = set()
        self._barriers_seen: set[str] = set()
        self._read_lock = threading.Lock()

    @property
    def records(self) -> list[RequestRecord]:
        self._read()
        return super().records

    def clear(self) -> None:
        self._read()
        super().clear()

    def __len__(self) -> int:
        self._read()
        return super().__len__()

    def _read(self) -> None:
        if self.barrier is None:
            self._read_once()
            return
        token = BARRIER_PREFIX + uuid.uuid4().hex
        self.barrier(token)
        deadline = time.monotonic() + BARRIER_TIMEOUT
        while token not in self._barriers_seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"audit log {self.path}: no barrier request in 5 s")
            self._read_once()
            if token not in self._barriers_seen:
                time.sleep(0.005)
        self._barriers_seen.discard(token)

    def _read_once(self) -> None:
        with self._read_lock:
            try:
                with self.path.open("rb") as fh:
                    fh.seek(self._offset)
                    chunk = fh.read()
            except FileNotFoundError:
                return
            self._offset += len(chunk)
            lines = (self._partial + chunk).split(b"\n")
            self._partial = lines.pop()  # an unfinished last line waits for its end
            for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                audit_id = str(event.get("auditID"))
                # A watch logs ResponseStarted then ResponseComplete: one request, one record.
                if audit_id in self._seen:
                    continue
                self._seen.add(audit_id)
                name = str((event.get("objectRef") or {}).get("name") or "")
                if name.startswith(BARRIER_PREFIX):
                    self._barriers_seen.add(name)
                    continue
                self.add(record(event))


def _seconds(stamp: Any) -> float:
    if not stamp:
        return 0.0
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
