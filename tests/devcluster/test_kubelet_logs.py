"""LogStore: reads like pods/log (tail, limit, timestamps, since), follow, close, forget."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devcluster.logs import LogStore, rfc3339nano

NS, POD, C = "ns", "pod", "base"


class Clock:
    def __init__(self) -> None:
        self.ns = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        return self.ns


def store_with(*chunks: bytes, clock: Clock | None = None) -> LogStore:
    logs = LogStore(clock or Clock())
    logs.open(NS, POD, C)
    for chunk in chunks:
        logs.append(NS, POD, C, chunk)
    return logs


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, b"one\ntwo\nthree"),
        ({"tail_lines": 1}, b"three"),
        ({"tail_lines": 2}, b"two\nthree"),
        ({"tail_lines": 10}, b"one\ntwo\nthree"),
        ({"tail_lines": 0}, b""),
        ({"limit_bytes": 5}, b"one\nt"),
        ({"limit_bytes": 0}, b""),
        ({"tail_lines": 2, "limit_bytes": 3}, b"two"),
    ],
)
def test_read(kwargs: dict[str, Any], expected: bytes) -> None:
    assert store_with(b"one\ntwo\n", b"three").read(NS, POD, C, **kwargs) == expected


def test_timestamps_prefix_every_line_in_rfc3339nano() -> None:
    clock = Clock()
    clock.ns = 1_700_000_000_000_000_500
    logs = store_with(b"a\nb\n", clock=clock)
    out = logs.read(NS, POD, C, timestamps=True)
    assert out == b"2023-11-14T22:13:20.000000500Z a\n2023-11-14T22:13:20.000000500Z b\n"


def test_rfc3339nano_keeps_nine_digits() -> None:
    assert rfc3339nano(0) == "1970-01-01T00:00:00.000000000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", rfc3339nano(123456789))


def test_since_seconds_keeps_recent_lines() -> None:
    clock = Clock()
    logs = store_with(b"old\n", clock=clock)
    clock.ns += 10 * 1_000_000_000
    logs.append(NS, POD, C, b"new\n")
    assert logs.read(NS, POD, C, since_seconds=5) == b"new\n"
    assert logs.read(NS, POD, C, since_seconds=11) == b"old\nnew\n"


def test_unknown_container_is_a_key_error() -> None:
    logs = store_with(b"x")
    with pytest.raises(KeyError):
        logs.read(NS, POD, "other")
    with pytest.raises(KeyError):
        logs.read(NS, "nope", C)


def test_open_container_without_output_reads_empty() -> None:
    logs = store_with()
    assert logs.read(NS, POD, C) == b""
    assert logs.containers(NS, POD) == [C]
    assert not logs.is_closed(NS, POD, C)


def test_forget_drops_the_pods_logs() -> None:
    logs = store_with(b"x")
    logs.open(NS, "other", C)
    logs.forget(NS, POD)
    with pytest.raises(KeyError):
        logs.read(NS, POD, C)
    assert logs.containers(NS, "other") == [C]


def test_append_after_close_is_ignored() -> None:
    logs = store_with(b"x\n")
    logs.close(NS, POD, C)
    logs.append(NS, POD, C, b"late\n")
    assert logs.read(NS, POD, C) == b"x\n"
    assert logs.is_closed(NS, POD, C)


async def collect(logs: LogStore, **kwargs: Any) -> list[bytes]:
    return [chunk async for chunk in logs.follow(NS, POD, C, **kwargs)]


async def test_follow_yields_existing_then_new_and_ends_on_close() -> None:
    logs = store_with(b"a\n")
    follower = asyncio.create_task(collect(logs))
    await asyncio.sleep(0)  # the follower reads what exists and waits
    logs.append(NS, POD, C, b"b\n")
    await asyncio.sleep(0)
    logs.append(NS, POD, C, b"c")
    logs.close(NS, POD, C)
    chunks = await asyncio.wait_for(follower, 2)
    assert b"".join(chunks) == b"a\nb\nc"
    assert chunks[0] == b"a\n"


async def test_follow_answers_at_once_for_a_quiet_container() -> None:
    logs = store_with()
    stream = logs.follow(NS, POD, C)
    assert await asyncio.wait_for(stream.__anext__(), 1) == b""
    logs.append(NS, POD, C, b"late\n")
    assert await asyncio.wait_for(stream.__anext__(), 1) == b"late\n"
    logs.close(NS, POD, C)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(stream.__anext__(), 1)


async def test_follow_continues_a_partial_line() -> None:
    logs = store_with(b"ab")
    follower = asyncio.create_task(collect(logs))
    await asyncio.sleep(0)
    logs.append(NS, POD, C, b"c\nd")
    logs.close(NS, POD, C)
    assert b"".join(await asyncio.wait_for(follower, 2)) == b"abc\nd"
    assert logs.read(NS, POD, C, tail_lines=1) == b"d"
    assert logs.read(NS, POD, C, tail_lines=2) == b"abc\nd"


async def test_follow_of_a_closed_log_returns_what_exists() -> None:
    logs = store_with(b"a\nb\n")
    logs.close(NS, POD, C)
    assert await asyncio.wait_for(collect(logs, tail_lines=1), 2) == [b"b\n"]


async def test_follow_honours_limit_bytes_and_timestamps() -> None:
    logs = store_with(b"abc\n")
    follower = asyncio.create_task(collect(logs, limit_bytes=6))
    await asyncio.sleep(0)
    logs.append(NS, POD, C, b"defgh\n")
    assert b"".join(await asyncio.wait_for(follower, 2)) == b"abc\nde"
    logs.close(NS, POD, C)
    stamped = b"".join(await asyncio.wait_for(collect(logs, timestamps=True), 2))
    assert stamped.count(b"Z ") == 2


async def test_forget_ends_followers() -> None:
    logs = store_with(b"a\n")
    follower = asyncio.create_task(collect(logs))
    await asyncio.sleep(0)
    logs.forget(NS, POD)
    assert await asyncio.wait_for(follower, 2) == [b"a\n"]


@settings(deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_read_returns_appends_byte_for_byte(chunks: list[bytes]) -> None:
    logs = store_with(*chunks)
    assert logs.read(NS, POD, C) == b"".join(chunks)
    # Like the container runtime, only "\n" ends a line.
    parts = b"".join(chunks).split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    assert logs.read(NS, POD, C, tail_lines=2) == b"".join(lines[-2:])
