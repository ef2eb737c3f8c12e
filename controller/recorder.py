"""Events posted beside the reconciles, as client-go's event recorder posts them.

An Event is a note for people (``kubectl describe``), never a step of a reconcile. Posted
on the worker, it made every run wait one more round trip before its pod was deleted and
its worker freed (on the real API server at 50 runs/s offered: 37 ms p50, 396 ms p99;
docs/benchmarks.md). The recorder queues it and returns; a few posting tasks send them in
the order recorded. Like client-go's broadcaster (a buffer of 1,000, then drops), a full
buffer drops the new Event and counts it: a flood of Events never holds a run, and never
grows memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from controller import metrics
from controller.k8s import Client
from controller.posters import Posters

log = logging.getLogger(__name__)

MAX_PENDING = 1000
# Enough to keep up with the reconciles' own pace (an Event per status change) without
# making Events a second burst of their own against the API server.
POSTERS = 4

Pending = tuple[Mapping[str, Any], str, str, str]


class EventRecorder:
    """Queues Events on TaskRuns and posts them in the background."""

    def __init__(
        self,
        client: Callable[[], Awaitable[Client]],
        max_pending: int = MAX_PENDING,
        posters: int = POSTERS,
    ) -> None:
        self._client = client
        self._max_pending = max_pending
        self._pending: deque[Pending] = deque()
        self._posters = Posters(self._post, posters)
        self.dropped = 0

    def record(self, taskrun: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post an Event on ``taskrun`` soon; never waits, never raises."""
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            metrics.observe_event_dropped()
            if self.dropped == 1 or self.dropped % self._max_pending == 0:
                meta = taskrun.get("metadata") or {}
                log.warning(
                    "event %s on %s/%s dropped: %d events wait to be posted (at most %d); "
                    "%d dropped so far",
                    reason,
                    meta.get("namespace"),
                    meta.get("name"),
                    len(self._pending),
                    self._max_pending,
                    self.dropped,
                )
            return
        self._pending.append((taskrun, type_, reason, message))
        self._posters.wake()

    async def flushed(self) -> None:
        """Wait until every recorded Event was posted (or failed to be)."""
        await self._posters.flushed()

    async def close(self) -> None:
        """Stop posting; what is still queued is not posted."""
        self._pending.clear()
        await self._posters.cancel()

    async def _post(self) -> None:
        while self._pending:
            taskrun, type_, reason, message = self._pending.popleft()
            try:
                client = await self._client()
                await client.create_event(taskrun, type_, reason, message)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                # create_event already logs the API server's refusals; this is the rest
                # (a connection lost, no client yet). An Event is never retried.
                meta = taskrun.get("metadata") or {}
                log.warning(
                    "event %s on %s/%s not recorded: %s",
                    reason,
                    meta.get("namespace"),
                    meta.get("name"),
                    err,
                )
