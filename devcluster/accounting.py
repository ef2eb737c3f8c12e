"""Request accounting: every API request devcluster serves, as Kubernetes names it."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any


@dataclasses.dataclass
class RequestRecord:
    """One served request. A watch is recorded when its stream opens; its duration grows
    until the stream ends."""

    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    user_agent: str
    started: float  # time.time() when the request arrived
    duration: float  # seconds until the response (for watches: until the stream ended)
    path: str = ""
    query: str = ""


class RequestLog:
    """Thread-safe list of records; tests read it from outside the server's loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def filter(self, **filters: Any) -> list[RequestRecord]:
        """Records whose fields equal the given values; user_agent matches as a prefix."""
        out = []
        for record in self.records:
            ok = True
            for field, want in filters.items():
                have = getattr(record, field)
                if field == "user_agent":
                    ok = ok and str(have).startswith(want)
                elif isinstance(want, (set, frozenset, tuple, list)):
                    ok = ok and have in want
                else:
                    ok = ok and have == want
            if ok:
                out.append(record)
        return out

    def count(self, **filters: Any) -> int:
        """How many records match, e.g. ``count(verb="patch", resource="taskruns")``."""
        return len(self.filter(**filters))

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)
