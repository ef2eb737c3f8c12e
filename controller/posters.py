"""A few tasks that drain one queue beside the reconciles: started on demand, gone when idle.

The shape client-go's event broadcaster has, shared by the Event recorder and the pod
disposer: the owner keeps the queue and says how to drain it; ``wake`` starts another
task while fewer than ``limit`` run, each task returns once the queue is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class Posters:
    """At most ``limit`` tasks running ``drain`` at once."""

    def __init__(self, drain: Callable[[], Coroutine[Any, Any, None]], limit: int) -> None:
        self._drain = drain
        self._limit = limit
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def wake(self) -> None:
        """Something was queued: one more task drains the queue unless ``limit`` already do."""
        if len(self._tasks) < self._limit:
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flushed(self) -> None:
        """Wait until the tasks have drained the queue (and every task has ended)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        """Stop every task and wait for it to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
