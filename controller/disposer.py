"""Pod deletes after a TaskRun's terminal status, sent beside the reconciles.

Once the terminal status is written, nothing else of the run waits for its pod to go: on
the worker, the delete made every finished run hold its worker one more round trip (on the
real API server at 50 runs/s offered: 159 ms p50, 1,197 ms p99; docs/benchmarks.md). The
worker marks the pod deleting in the cache at once (the next decision does not ask again)
and hands the delete to a few posting tasks, as the event recorder does with Events.

Unlike an Event, a delete is never dropped:

- a full buffer makes the worker delete inline, as it did before: back-pressure that ties
  the workers' pace to the API server's again, and no worse than deleting on the worker;
- a delete the API server refuses (anything but gone or another pod by now, which
  ``Client.delete_pod`` already takes as done) unmarks the pod and queues its TaskRun
  again after a backoff, so the usual reconcile decides the delete again from what it
  sees then (the run deleted, the pod gone, or still to delete);
- on shutdown the queued and in-flight deletes are dropped: the pods still exist, and the
  next start's reconcile of each finished run decides their delete again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from controller import metrics
from controller.cache import ObjectCache
from controller.k8s import Client
from controller.posters import Posters
from controller.workqueue import Key

log = logging.getLogger(__name__)

MAX_PENDING = 1000
# At the real API server's 160 ms p50 per delete, ten posters delete ~60 pods/s, above the
# 50 runs/s the benchmarks offer; the 20 workers deleted up to 20 at once before.
POSTERS = 10
# A refused delete is decided again after these delays (by the pod's refusals so far), then
# once a minute: an API server that keeps refusing gets no retry storm.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def retry_delay(failures: int) -> float:
    """The wait before deciding again on a pod whose delete was refused ``failures`` times."""
    index = min(max(failures, 1), len(RETRY_DELAYS_SECONDS)) - 1
    return RETRY_DELAYS_SECONDS[index]


@dataclass(frozen=True)
class PodDelete:
    """The delete of the pod ``uid`` of the TaskRun ``key`` (the pod is in its namespace)."""

    key: Key
    name: str
    uid: str
    grace_seconds: int | None


class PodDisposer:
    """Deletes finished runs' pods in the background; refused ones are decided again."""

    def __init__(
        self,
        client: Callable[[], Awaitable[Client]],
        cache: ObjectCache,
        requeue: Callable[[Key], None],
        max_pending: int = MAX_PENDING,
        posters: int = POSTERS,
    ) -> None:
        self._client = client
        self._cache = cache
        self._requeue = requeue
        self._max_pending = max_pending
        self._pending: deque[PodDelete] = deque()
        self._in_flight = 0
        self._posters = Posters(self._post, posters)
        self._retries: set[asyncio.TimerHandle] = set()
        # Refusals so far by pod uid, for the backoff; forgotten when the pod goes.
        self._failures: dict[str, int] = {}
        self.inline = 0
        self._closed = False

    def dispose(self, delete: PodDelete) -> bool:
        """Mark the pod deleting and queue its delete; False when the buffer is full (the
        caller then deletes inline), and once closed."""
        if self._closed:
            return False
        if len(self._pending) >= self._max_pending:
            self.inline += 1
            if self.inline == 1 or self.inline % self._max_pending == 0:
                log.warning(
                    "pod %s/%s deleted on the worker: %d deletes wait to be sent (at most %d);"
                    " %d deleted on workers so far",
                    delete.key[0],
                    delete.name,
                    len(self._pending),
                    self._max_pending,
                    self.inline,
                )
            return False
        self._cache.deleting(delete.uid)
        self._pending.append(delete)
        self._gauge()
        self._posters.wake()
        return True

    def forget_pod(self, uid: str) -> None:
        """The pod is gone: its refusals no longer count."""
        self._failures.pop(uid, None)

    @property
    def pending(self) -> int:
        """Deletes queued or in flight."""
        return len(self._pending) + self._in_flight

    async def flushed(self) -> None:
        """Wait until every queued delete was sent (refused ones are queued again later)."""
        await self._posters.flushed()

    async def close(self) -> None:
        """Stop sending: the pods still there are deleted by the next start's reconciles.

        Called before the work queue stops: a retry's timer must not queue a key while the
        workers are being cancelled, and a reconcile still in flight deletes inline.
        """
        self._closed = True
        self._pending.clear()
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        await self._posters.cancel()
        self._gauge()

    async def _post(self) -> None:
        while self._pending:
            delete = self._pending.popleft()
            self._in_flight += 1
            try:
                client = await self._client()
                await client.delete_pod(
                    delete.key[0], delete.name, delete.uid, delete.grace_seconds
                )
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self._refused(delete, err)
            else:
                self._failures.pop(delete.uid, None)
            finally:
                self._in_flight -= 1
                self._gauge()

    def _refused(self, delete: PodDelete, err: Exception) -> None:
        metrics.observe_pod_delete_failed()
        failures = self._failures.get(delete.uid, 0) + 1
        self._failures[delete.uid] = failures
        delay = retry_delay(failures)
        log.warning(
            "delete of pod %s/%s refused (%s); deciding again in %gs",
            delete.key[0],
            delete.name,
            err,
            delay,
        )
        # The pod stays marked deleting until then: reconciles in between do not decide the
        # delete again at once.
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def again() -> None:
            self._retries.discard(handle)
            self._cache.delete_refused(delete.uid)
            self._requeue(delete.key)

        handle = loop.call_later(delay, again)
        self._retries.add(handle)

    def _gauge(self) -> None:
        metrics.set_pod_deletes_pending(self.pending)
