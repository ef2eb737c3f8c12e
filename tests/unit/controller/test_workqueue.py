"""controller/workqueue.py: client-go's rules, the pod lane before the run lane with the run
lane never starved, and kopf's pause gate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kopf._cogs.aiokits import aiotoggles

from controller import workqueue
from controller.core.clock import SystemClock
from controller.workqueue import RUN_LANE_EVERY, Key, Lane, WorkQueue

POD, RUN = Lane.POD, Lane.RUN


def k(name: str) -> Key:
    return ("ns", name)


async def settle(turns: int = 30) -> None:
    """Let every ready callback and task run (no timer is due in these tests)."""
    for _ in range(turns):
        await asyncio.sleep(0)


def recording_queue(max_workers: int = 1) -> tuple[WorkQueue, list[str]]:
    handled: list[str] = []

    async def handle(key: Key) -> None:
        handled.append(key[1])

    return WorkQueue(handle, lambda *_: None, max_workers, SystemClock()), handled


# (triggers made before any worker runs, the order one worker handles them in)
ORDER = [
    ([("a", RUN), ("b", RUN), ("c", RUN)], "abc"),
    ([("a", RUN), ("b", RUN), ("c", POD)], "cab"),
    # a pod trigger moves a queued key ahead; its old place is skipped
    ([("a", RUN), ("b", RUN), ("a", POD)], "ab"),
    ([("a", RUN), ("b", RUN), ("b", POD)], "ba"),
    # a key waits once, in the better of its lanes
    ([("a", POD), ("a", RUN), ("a", POD)], "a"),
    ([("a", RUN), ("a", RUN)], "a"),
    ([("a", POD), ("b", POD), ("c", RUN), ("b", RUN)], "abc"),
    # moved, then moved back by nothing: still once
    ([("a", RUN), ("b", POD), ("a", POD), ("c", RUN)], "bac"),
]


@pytest.mark.parametrize(("triggers", "order"), ORDER)
async def test_the_pod_lane_is_served_first(triggers: list[tuple[str, Lane]], order: str) -> None:
    queue, handled = recording_queue()
    for name, lane in triggers:
        queue.trigger(k(name), lane)
    assert len(queue) == len(set(order))
    await queue.drained()
    assert "".join(handled) == order
    assert len(queue) == 0


async def test_the_run_lane_gets_one_pick_in_run_lane_every() -> None:
    queue, handled = recording_queue()
    queue.trigger(k("r1"), RUN)
    queue.trigger(k("r2"), RUN)
    pods = [f"p{i}" for i in range(3 * RUN_LANE_EVERY)]
    for name in pods:
        queue.trigger(k(name), POD)
    await queue.drained()
    streak = RUN_LANE_EVERY - 1
    expected = [*pods[:streak], "r1", *pods[streak : 2 * streak], "r2", *pods[2 * streak :]]
    assert handled == expected


async def test_a_busy_pod_lane_does_not_starve_a_new_run() -> None:
    """Every handled key brings a new pod trigger (the pod lane never empties); the run
    lane's key still runs within RUN_LANE_EVERY picks."""
    handled: list[str] = []
    queue: WorkQueue

    async def handle(key: Key) -> None:
        handled.append(key[1])
        if len(handled) < 50:
            queue.trigger(k(f"p{len(handled)}"), POD)

    queue = WorkQueue(handle, lambda *_: None, 1, SystemClock())
    queue.trigger(k("p0"), POD)
    queue.trigger(k("new"), RUN)
    await queue.drained()
    assert handled.index("new") < RUN_LANE_EVERY


async def test_a_trigger_during_handling_queues_the_key_once_more_in_its_best_lane() -> None:
    release = asyncio.Event()
    handled: list[str] = []

    async def handle(key: Key) -> None:
        handled.append(key[1])
        if len(handled) == 1:
            await release.wait()

    queue = WorkQueue(handle, lambda *_: None, 2, SystemClock())
    queue.trigger(k("a"), RUN)
    await settle()
    queue.trigger(k("b"), RUN)
    await settle()
    queue.trigger(k("a"), RUN)
    queue.trigger(k("a"), POD)
    queue.trigger(k("c"), RUN)
    assert len(queue) == 1  # c; a waits for its handling to end, once
    release.set()
    await queue.drained()
    assert handled == ["a", "b", "c", "a"] or handled == ["a", "b", "a", "c"]
    assert handled.count("a") == 2


async def test_a_failure_comes_back_after_its_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workqueue, "ERROR_BACKOFF_SECONDS", (0.0,))
    errors: list[tuple[Key, float]] = []
    calls: list[Key] = []
    again = asyncio.Event()

    async def handle(key: Key) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("boom")
        again.set()

    queue = WorkQueue(handle, lambda key, _e, delay: errors.append((key, delay)), 1, SystemClock())
    queue.trigger(k("a"), POD)
    await asyncio.wait_for(again.wait(), 5)
    assert calls == [k("a"), k("a")] and errors == [(k("a"), 0.0)]
    await queue.close()


# --- the pause gate --------------------------------------------------------------------------


@dataclass
class Gated:
    queue: WorkQueue
    pause: aiotoggles.Toggle
    handled: list[str] = field(default_factory=list)
    events: dict[str, asyncio.Event] = field(default_factory=dict)

    def seen(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())


async def gated(block: Callable[[str], Any] | None = None) -> Gated:
    """A queue behind kopf's own toggle set, as the operator's watchers get it."""
    operator_paused = aiotoggles.ToggleSet(any)
    pause = await operator_paused.make_toggle(name="a peer of higher priority")
    box: list[Gated] = []

    async def handle(key: Key) -> None:
        g = box[0]
        assert operator_paused.is_off(), f"{key} handed to a worker while paused"
        g.handled.append(key[1])
        g.seen(key[1]).set()
        if block is not None:
            await block(key[1])

    queue = WorkQueue(handle, lambda *_: None, 4, SystemClock())
    queue.pause_with(operator_paused)
    box.append(Gated(queue, pause))
    return box[0]


async def test_while_paused_neither_a_trigger_nor_a_timer_runs_the_handler() -> None:
    g = await gated()
    await g.pause.turn_to(True)
    g.queue.trigger(k("event"), POD)
    fired = asyncio.Event()
    trigger = g.queue.trigger

    def timer_trigger(key: Key, lane: Lane = RUN) -> None:
        trigger(key, lane)
        fired.set()

    g.queue.trigger = timer_trigger  # type: ignore[method-assign]
    due = datetime.now(timezone.utc) - timedelta(seconds=1)
    g.queue.wake_at(k("deadline"), due)
    await asyncio.wait_for(fired.wait(), 5)
    await settle()
    assert g.handled == []
    assert len(g.queue) == 2  # both wait: nothing is lost
    assert not g.queue.workers  # and no task idles for them

    await g.pause.turn_to(False)
    await asyncio.wait_for(g.seen("deadline").wait(), 5)
    await g.queue.drained()
    assert sorted(g.handled) == ["deadline", "event"]
    await g.queue.close()


async def test_a_handling_in_flight_finishes_and_the_next_waits_for_the_resume() -> None:
    release = asyncio.Event()

    async def block(name: str) -> None:
        if name == "first":
            await release.wait()

    g = await gated(block)
    g.queue.trigger(k("first"), RUN)
    await asyncio.wait_for(g.seen("first").wait(), 5)
    await g.pause.turn_to(True)
    g.queue.trigger(k("second"), POD)
    g.queue.trigger(k("first"), POD)  # during its handling: once more, after the pause
    release.set()
    await g.queue.drained()  # the in-flight handling completed ...
    assert g.handled == ["first"]
    assert len(g.queue) == 2  # ... and nothing else started
    await g.pause.turn_to(False)
    await asyncio.wait_for(g.seen("second").wait(), 5)
    await settle()
    await g.queue.drained()
    assert sorted(g.handled) == ["first", "first", "second"]
    await g.queue.close()


async def test_a_pause_that_ends_and_comes_back_before_the_resume_runs_holds() -> None:
    g = await gated()
    await g.pause.turn_to(True)
    g.queue.trigger(k("a"), RUN)
    await settle()
    await g.pause.turn_to(False)
    await g.pause.turn_to(True)  # before the resumer had a turn
    await settle()
    assert g.handled == []
    await g.pause.turn_to(False)
    await asyncio.wait_for(g.seen("a").wait(), 5)
    await g.queue.close()


async def test_close_while_paused_leaves_no_task() -> None:
    g = await gated()
    await g.pause.turn_to(True)
    g.queue.trigger(k("a"), RUN)
    await settle()
    await g.queue.close()
    await settle()
    assert not g.queue.workers
    assert [t for t in asyncio.all_tasks() if "_resume" in repr(t)] == []


# --- model-based: random triggers, completions, failures and pauses ---------------------


@dataclass
class Model:
    """The queue's rules written plainly (O(n) lists): the queue must pick what this picks."""

    lanes: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))
    queued: dict[str, Lane] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    again: dict[str, Lane] = field(default_factory=dict)
    streak: int = 0
    # keys triggered since their last pick: each must be handled again
    owed: set[str] = field(default_factory=set)

    def trigger(self, key: str, lane: Lane) -> None:
        self.owed.add(key)
        if key in self.active:
            self.again[key] = min(lane, self.again.get(key, lane))
            return
        self._enqueue(key, lane)

    def _enqueue(self, key: str, lane: Lane) -> None:
        current = self.queued.get(key)
        if current is not None and current <= lane:
            return
        if current is not None:
            self.lanes[current].remove(key)
        self.lanes[lane].append(key)
        self.queued[key] = lane

    def pick(self) -> str:
        pod, run = self.lanes[POD], self.lanes[RUN]
        if pod and (not run or self.streak < RUN_LANE_EVERY - 1):
            key = pod.pop(0)
            self.streak = self.streak + 1 if run else 0
        else:
            assert run, "the queue picked a key while the model has none queued"
            key = run.pop(0)
            self.streak = 0
        del self.queued[key]
        assert key not in self.active, f"{key} handled by two workers at once"
        self.active.add(key)
        self.owed.discard(key)
        return key

    def finish(self, key: str) -> None:
        self.active.remove(key)
        lane = self.again.pop(key, None)
        if lane is not None:
            self._enqueue(key, lane)


KEYS = st.sampled_from("abcdef")
OPS = st.one_of(
    st.tuples(st.just("trigger"), KEYS, st.sampled_from(list(Lane))),
    st.tuples(st.just("finish"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("pause"), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(OPS, max_size=60), max_workers=st.integers(1, 3))
def test_random_sequences_keep_the_queue_rules(
    ops: list[tuple[Any, ...]], max_workers: int
) -> None:
    asyncio.run(_run_program(ops, max_workers))


async def _run_program(ops: list[tuple[Any, ...]], max_workers: int) -> None:
    saved = workqueue.ERROR_BACKOFF_SECONDS
    workqueue.ERROR_BACKOFF_SECONDS = (0.0,)  # a failure's retry comes at the next loop turn
    try:
        await _program(ops, max_workers)
    finally:
        workqueue.ERROR_BACKOFF_SECONDS = saved


async def _program(ops: list[tuple[Any, ...]], max_workers: int) -> None:
    model = Model()
    operator_paused = aiotoggles.ToggleSet(any)
    pause = await operator_paused.make_toggle(name="peer")
    running: dict[str, asyncio.Future[bool]] = {}

    async def handle(key: Key) -> None:
        name = key[1]
        assert operator_paused.is_off(), f"{name} handed to a worker while paused"
        assert model.pick() == name
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        running[name] = done
        ok = await done
        del running[name]
        model.finish(name)
        if not ok:
            raise RuntimeError("failed")

    queue = WorkQueue(handle, lambda *_: None, max_workers, SystemClock())
    trigger = queue.trigger

    def traced(key: Key, lane: Lane = RUN) -> None:  # the tests' and the error timers'
        model.trigger(key[1], lane)
        trigger(key, lane)

    queue.trigger = traced  # type: ignore[method-assign]
    queue.pause_with(operator_paused)

    def check() -> None:
        assert len(queue) == len(model.queued)
        assert len(model.active) <= max_workers
        if operator_paused.is_off() and model.queued:
            # work-conserving: nothing waits while a worker could take it
            assert len(model.active) == max_workers, (model, max_workers)

    for op in ops:
        if op[0] == "trigger":
            queue.trigger(k(op[1]), op[2])
        elif op[0] == "finish" and running:
            name = sorted(running)[op[1] % len(running)]
            running[name].set_result(op[2])
        elif op[0] == "pause":
            await pause.turn_to(op[1])
        await settle()
        check()

    # Then every owed handling happens once the pause ends.
    await pause.turn_to(False)
    for _ in range(500):
        await settle()
        check()
        if not running and not model.queued:
            break
        for done in list(running.values()):
            if not done.done():
                done.set_result(True)
    assert not running and not model.queued and not model.active
    assert model.owed == set(), f"triggers never handled: {model.owed}"
    await queue.close()
