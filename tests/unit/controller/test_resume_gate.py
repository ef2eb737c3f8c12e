"""controller/eventpath.py's ResumeGate: kopf's pause, held on after it ends until each of
the streams it closed has listed again (at most RELIST_HOLD_SECONDS)."""

from __future__ import annotations

import asyncio

import pytest
from kopf._cogs.aiokits import aiotoggles

from controller import eventpath
from controller.eventpath import ResumeGate


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def paused_set() -> tuple[aiotoggles.ToggleSet, aiotoggles.Toggle]:
    operator_paused = aiotoggles.ToggleSet(any)
    return operator_paused, await operator_paused.make_toggle(name="a peer of higher priority")


async def test_the_gate_follows_the_pause_and_then_the_relists() -> None:
    operator_paused, peer = await paused_set()
    gate = ResumeGate(operator_paused)
    pods, runs = object(), object()
    gate.opened(pods)
    gate.opened(runs)
    gate.listed(pods)
    gate.listed(runs)
    await turns()
    assert not gate.is_on()  # the first lists are not held back by a pause that never was

    await peer.turn_to(True)
    await turns()
    assert gate.is_on()
    resumed = asyncio.ensure_future(gate.wait_for(False))
    await peer.turn_to(False)
    await turns()
    assert gate.is_on() and not resumed.done()  # kopf resumed; the streams list again
    gate.listed(pods)
    await turns()
    assert gate.is_on() and not resumed.done()
    gate.listed(runs)
    await asyncio.wait_for(resumed, 5)
    assert not gate.is_on()
    gate.closed(pods)
    gate.closed(runs)


async def test_a_stream_that_ends_during_the_relist_does_not_hold_the_gate() -> None:
    operator_paused, peer = await paused_set()
    gate = ResumeGate(operator_paused)
    kept, gone = object(), object()
    gate.opened(kept)
    gate.opened(gone)
    await turns()
    await peer.turn_to(True)
    await turns()
    await peer.turn_to(False)
    gate.listed(kept)
    assert gate.is_on()
    gate.closed(gone)  # kopf stopped watching that namespace
    assert not gate.is_on()
    gate.closed(kept)


async def test_a_stream_that_cannot_list_holds_the_gate_for_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(eventpath, "RELIST_HOLD_SECONDS", 0.2)
    operator_paused, peer = await paused_set()
    gate = ResumeGate(operator_paused)
    stuck = object()
    gate.opened(stuck)
    await turns()
    await peer.turn_to(True)
    await turns()
    await peer.turn_to(False)
    assert gate.is_on()
    await asyncio.wait_for(gate.wait_for(False), 5)
    assert not gate.is_on()
    gate.closed(stuck)


async def test_the_follower_stops_with_the_last_stream() -> None:
    operator_paused, _ = await paused_set()
    gate = ResumeGate(operator_paused)
    stream = object()
    gate.opened(stream)
    await turns()
    follower = gate._follower
    assert follower is not None and not follower.done()
    gate.closed(stream)
    await turns()
    assert follower.cancelled()
