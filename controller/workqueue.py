"""The work queue, as client-go's: a key waits at most once, is handled by one worker at a
time, a trigger during its handling queues it once more, and a failure comes back later.

Workers are started by ``trigger`` up to ``max_workers`` and exit when the queue is empty:
an idle controller holds no task, and a start-up list of 10,000 TaskRuns holds 10,000 keys,
not tasks.

Two lanes. A key triggered by its pod (``Lane.POD``: a run already started whose pod
changed, ended or went away) is served before the keys triggered by TaskRun events and
timers (``Lane.RUN``: mostly new runs). Under overload a finished pod's status then waits
for the other finished pods, not for every new TaskRun offered before it. A queued run-lane
key that gets a pod trigger moves to the pod lane; its old place is skipped when reached.
The run lane is never starved: of any ``RUN_LANE_EVERY`` consecutive picks made while it
holds a key, one is its head.

A pause gate (kopf's ``operator_paused``, see ``pause_with``): while it is on, no key is
handed to a worker. Keys and timers stay, a timer that fires just queues its key, handlings
in flight finish; when the gate turns off, the queued keys run.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from controller.core.clock import Clock

Key = tuple[str, str]
# A key whose handling keeps failing comes back after these delays, then once a minute.
ERROR_BACKOFF_SECONDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# The clock has second precision in status timestamps; a little slack avoids waking a hair
# early and finding nothing due yet.
WAKE_SLACK_SECONDS = 0.05
# Of any this many consecutive picks made while the run lane holds a key, one is from the
# run lane: new runs still start while finished pods keep coming, at a fifth of the workers'
# pace at worst (a started run brings two or three pod triggers of its own, so the pod lane
# rarely stays full for long).
RUN_LANE_EVERY = 5


class Lane(enum.IntEnum):
    """Which lane a trigger queues its key in; the lower one is served first."""

    POD = 0  # the run's pod changed: status to write, a pod's end, a deletion
    RUN = 1  # TaskRun events and timers


class PauseGate(Protocol):
    """What the queue needs of kopf's ``aiotoggles.ToggleSet``: on means paused."""

    def is_on(self) -> bool: ...

    async def wait_for(self, state: bool, /) -> None: ...


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
        # A queued key's ticket: its lane and the sequence number of its one valid entry in
        # that lane's deque. Entries whose ticket is gone or newer are skipped when reached:
        # moving a key to the pod lane is an append, never an O(n) removal.
        self._queued: dict[Key, tuple[Lane, int]] = {}
        self._lanes: tuple[deque[tuple[Key, int]], ...] = tuple(deque() for _ in Lane)
        self._tickets = itertools.count()
        self._pod_streak = 0  # pod-lane picks in a row while the run lane held a key
        self._active: set[Key] = set()
        self._again: dict[Key, Lane] = {}
        self.workers: set[asyncio.Task[None]] = set()
        # Workers that have not decided to exit: counted apart from ``workers``, whose
        # done-callbacks run a loop turn later, so a trigger in between still starts one.
        self._running = 0
        self._gate: PauseGate | None = None
        self._resumer: asyncio.Task[None] | None = None
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._errors: dict[Key, int] = {}

    def __len__(self) -> int:
        """Keys waiting for a worker."""
        return len(self._queued)

    def trigger(self, key: Key, lane: Lane = Lane.RUN) -> None:
        """Handle ``key`` soon; bursts of triggers collapse into one more pass."""
        if key in self._active:
            self._again[key] = min(lane, self._again.get(key, lane))
            return
        ticket = self._queued.get(key)
        if ticket is not None and ticket[0] <= lane:
            return
        self._enqueue(key, lane)
        if ticket is None:
            self._start_workers()

    def pause_with(self, gate: PauseGate) -> None:
        """Hand no key to a worker while ``gate`` is on (kopf's peering pause)."""
        if gate is self._gate:
            return
        self._gate = gate
        if self._resumer is not None:  # it waits for the gate replaced
            self._resumer.cancel()
            self._resumer = None
        if self._queued:
            self._start_workers()

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
        """Wait until nothing is being handled and, unless paused, nothing is queued (tests)."""
        while self.workers:
            await asyncio.gather(*self.workers, return_exceptions=True)

    async def close(self) -> None:
        """Stop the timers and the workers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self.workers)
        if self._resumer is not None:
            tasks.append(self._resumer)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- lanes -----------------------------------------------------------------------------

    def _enqueue(self, key: Key, lane: Lane) -> None:
        ticket = next(self._tickets)
        self._queued[key] = (lane, ticket)
        self._lanes[lane].append((key, ticket))

    def _head(self, lane: Lane) -> Key | None:
        """The lane's first valid key, dropping the skipped entries before it."""
        entries = self._lanes[lane]
        while entries:
            key, ticket = entries[0]
            if self._queued.get(key) == (lane, ticket):
                return key
            entries.popleft()
        return None

    def _pick(self) -> Key | None:
        """The next key to handle, taken off the queue; None if nothing waits."""
        pod, run = self._head(Lane.POD), self._head(Lane.RUN)
        if pod is not None and (run is None or self._pod_streak < RUN_LANE_EVERY - 1):
            key, lane = pod, Lane.POD
            self._pod_streak = 0 if run is None else self._pod_streak + 1
        elif run is not None:
            key, lane = run, Lane.RUN
            self._pod_streak = 0
        else:
            return None
        self._lanes[lane].popleft()
        del self._queued[key]
        return key

    # --- workers ---------------------------------------------------------------------------

    def _paused(self) -> bool:
        return self._gate is not None and self._gate.is_on()

    def _start_workers(self) -> None:
        if self._paused():
            if self._resumer is None:
                self._resumer = asyncio.get_running_loop().create_task(self._resume())
            return
        # A worker per queued key, busy ones apart, up to max_workers.
        while self._running < min(self._max_workers, len(self._active) + len(self._queued)):
            self._running += 1
            worker = asyncio.get_running_loop().create_task(self._work())
            self.workers.add(worker)
            worker.add_done_callback(self.workers.discard)

    async def _resume(self) -> None:
        assert self._gate is not None
        try:
            await self._gate.wait_for(False)
        finally:
            if self._resumer is asyncio.current_task():
                self._resumer = None
        self._start_workers()

    async def _work(self) -> None:
        try:
            await self._serve()
        finally:
            self._running -= 1
        if self._queued:
            self._start_workers()  # paused: wait for the end of the pause

    async def _serve(self) -> None:
        while not self._paused():
            key = self._pick()
            if key is None:
                return
            self._active.add(key)
            try:
                await self._guarded(key)
            finally:
                self._active.discard(key)
            again = self._again.pop(key, None)
            if again is not None:
                self._enqueue(key, again)

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
