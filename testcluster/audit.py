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
from datetime import datetime
from pathlib import Path
from typing import Any

from devcluster.accounting import RequestLog, RequestRecord


@dataclasses.dataclass
class AuditRecord(RequestRecord):
    """A RequestRecord plus who asked: the audit log knows the authenticated user."""

    user: str = ""


def record(event: dict[str, Any]) -> AuditRecord:
    """One audit event as the RequestRecord devcluster would have written, plus the user."""
    ref = event.get("objectRef") or {}
    uri = str(event.get("requestURI") or "")
    path, _, query = uri.partition("?")
    started = _seconds(event.get("requestReceivedTimestamp"))
    ended = _seconds(event.get("stageTimestamp")) or started
    return AuditRecord(
        user=str((event.get("user") or {}).get("username") or ""),
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


class AuditRequests(RequestLog):
    """The records of an audit log file, read incrementally on every access."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._offset = 0
        self._partial = b""
        self._seen: set[str] = set()
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
                self.add(record(event))


def _seconds(stamp: Any) -> float:
    if not stamp:
        return 0.0
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
