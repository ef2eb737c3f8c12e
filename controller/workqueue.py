"""The work queue, as client-go's: a key waits at most once, is handled by one worker at a
time, a trigger during its handling queues it once more, and a failure comes back later.

Workers are started by ``trigger`` up to ``max_workers`` and exit when the queue is empty:
an idle controller holds no task, and a start-up list of 10,000 TaskRuns holds 10,000 keys,
not tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime

from controller.core.clock import Clock

Key = tuple[str, str]
# A key whose handling keeps failing comes back after these delays, then once a minute.
ERROR_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# The clock has second precision in status timestamps; a little slack avoids waking a hair
# early and finding nothing due yet.
WAKE_SLACK_SECONDS = 0.05


class WorkQueue:
    """Handles triggered keys with ``handle``; ``on_error`` hears of a failure and its delay."""

    def __init__(
        self,
        handle: Callable[[Key], Awaitable[None]],
        on_error: Callable[[Key, Exception, float], None],
        max_workers: int,
        clock: Clock,
    ) -> None:
        self._handle = handle
        self._on_error = on_error
        self._max_workers = max_workers
        self._clock = clock
        self.waiting: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._again: set[Key] = set()
        self.workers: set[asyncio.Task[None]] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._errors: dict[Key, int] = {}

    def trigger(self, key: Key) -> None:
        """Handle ``key`` soon; bursts of triggers collapse into one more pass."""
        if key in self._active:
            self._again.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self.waiting.append(key)
        if len(self.workers) < self._max_workers:
            worker = asyncio.get_running_loop().create_task(self._work())
            self.workers.add(worker)
            worker.add_done_callback(self.workers.discard)

    def wake_at(self, key: Key, when: datetime | None) -> None:
        """Trigger ``key`` at ``when`` (None: no timer), replacing its earlier timer."""
        self.forget(key)
        if when is None:
            return
        delay = max((when - self._clock.now()).total_seconds(), 0.0)
        self._later(key, delay + WAKE_SLACK_SECONDS)

    def forget(self, key: Key) -> None:
        """Drop ``key``'s timer (the object is gone, or a new timer replaces it)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def drained(self) -> None:
        """Wait until nothing is queued or being handled (for tests)."""
        while self.workers:
            await asyncio.gather(*self.workers, return_exceptions=True)

    async def close(self) -> None:
        """Stop the timers and the workers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self.workers)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _work(self) -> None:
        while self.waiting:
            key = self.waiting.popleft()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self._guarded(key)
            finally:
                self._active.discard(key)
            if key in self._again:
                self._again.discard(key)
                self.trigger(key)

    async def _guarded(self, key: Key) -> None:
        try:
            await self._handle(key)
            self._errors.pop(key, None)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            count = self._errors.get(key, 0)
            self._errors[key] = count + 1
            delay = ERROR_BACKOFF_SECONDS[min(count, len(ERROR_BACKOFF_SECONDS) - 1)]
            self._on_error(key, err, delay)
            self.forget(key)
            self._later(key, delay)

    def _later(self, key: Key, delay: float) -> None:
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self.trigger, key)
