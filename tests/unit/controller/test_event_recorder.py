"""The event recorder: Events leave the reconcile at once and are posted in order, bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller import metrics
from controller.recorder import EventRecorder


class Sink:
    """Stands in for the API client's create_event: records, and can hold or fail posts."""

    def __init__(self, fail_reasons: tuple[str, ...] = ()) -> None:
        self.posted: list[str] = []
        self.fail_reasons = fail_reasons
        self.gate = asyncio.Event()
        self.gate.set()

    async def create_event(self, taskrun: Any, type_: str, reason: str, message: str) -> None:
        await self.gate.wait()
        if reason in self.fail_reasons:
            raise ConnectionResetError("connection lost")
        self.posted.append(f"{taskrun['metadata']['name']}:{type_}:{reason}:{message}")


def run(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}}


def recorder_for(sink: Sink, **kwargs: Any) -> EventRecorder:
    async def client() -> Any:
        return sink

    return EventRecorder(client, **kwargs)


async def test_record_returns_before_the_post_and_posts_in_order() -> None:
    sink = Sink()
    sink.gate.clear()
    recorder = recorder_for(sink, posters=1)
    for i in range(5):
        recorder.record(run(f"r{i}"), "Normal", "Succeeded", f"m{i}")
    # Nothing posted yet: the caller (a reconcile) never waited for the API server.
    await asyncio.sleep(0)
    assert sink.posted == []
    sink.gate.set()
    await recorder.flushed()
    assert sink.posted == [f"r{i}:Normal:Succeeded:m{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("max_pending", "recorded", "posted", "dropped"),
    [
        (3, 3, 3, 0),
        (3, 4, 3, 1),
        (3, 10, 3, 7),
        (1, 2, 1, 1),
    ],
)
async def test_a_full_buffer_drops_new_events_and_counts_them(
    max_pending: int, recorded: int, posted: int, dropped: int
) -> None:
    sink = Sink()
    sink.gate.clear()
    recorder = recorder_for(sink, max_pending=max_pending, posters=1)
    before = metrics.METRICS.events_dropped._value.get()
    for i in range(recorded):
        recorder.record(run(f"r{i}"), "Normal", "Running", "")
    # The one poster has taken nothing yet: all of them wait in the buffer or were dropped.
    sink.gate.set()
    await recorder.flushed()
    assert len(sink.posted) == posted
    assert [p.split(":")[0] for p in sink.posted] == [f"r{i}" for i in range(posted)]
    assert recorder.dropped == dropped
    assert metrics.METRICS.events_dropped._value.get() - before == dropped


async def test_a_failed_post_is_logged_and_the_rest_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(fail_reasons=("Failed",))
    recorder = recorder_for(sink, posters=1)
    recorder.record(run("a"), "Warning", "Failed", "boom")
    recorder.record(run("b"), "Normal", "Succeeded", "")
    await recorder.flushed()
    assert sink.posted == ["b:Normal:Succeeded:"]
    assert any("event Failed on ns/a not recorded" in r.getMessage() for r in caplog.records)


async def test_posters_are_bounded_and_exit_when_idle() -> None:
    sink = Sink()
    sink.gate.clear()
    recorder = recorder_for(sink, posters=2)
    for i in range(50):
        recorder.record(run(f"r{i}"), "Normal", "Running", "")
    assert len(recorder._posters) == 2
    sink.gate.set()
    await recorder.flushed()
    assert len(sink.posted) == 50
    assert len(recorder._posters) == 0


async def test_close_stops_posting_what_is_queued() -> None:
    sink = Sink()
    sink.gate.clear()
    recorder = recorder_for(sink, posters=1)
    for i in range(3):
        recorder.record(run(f"r{i}"), "Normal", "Running", "")
    await asyncio.sleep(0)
    await recorder.close()
    sink.gate.set()
    await asyncio.sleep(0)
    assert sink.posted == []
    assert len(recorder._posters) == 0
