"""The sync client (operator) and the async client (trigger) watch a TaskRun the same way.

Both drive one sans-IO state machine (taskrun.airflow.watch); here each is run over the
same scripted server answers (410 Gone on open and in the stream, dropped watches,
bookmarks, 504 refusals, ERROR events, deletion, replacement) through fakes of their own
client libraries, and must make the same requests, pause the same, hand on the same
versions and end the same way, which is also written out for each script.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("kubernetes_asyncio")

import aiohttp
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException
from urllib3.exceptions import ProtocolError

from taskrun.airflow import client
from taskrun.airflow.client import AsyncTaskRunApi, TaskRunApi
from taskrun.airflow.watch import WATCH_RETRIES, TaskRunGone, WatchRefused


def tr(version: int, phase: str = "Running", uid: str = "u1") -> dict[str, Any]:
    meta = {"name": "t", "namespace": "ns", "uid": uid, "resourceVersion": str(version)}
    return {"metadata": meta, "status": {"phase": phase}}


def ev(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def bookmark(version: int) -> dict[str, Any]:
    return ev("BOOKMARK", {"metadata": {"resourceVersion": str(version)}})


def error(code: int) -> dict[str, Any]:
    return ev("ERROR", {"kind": "Status", "code": code, "message": f"code {code}"})


@dataclass
class Refuse:
    status: int


@dataclass
class Stream:
    events: list[dict[str, Any]]
    broken: bool = False


@dataclass
class Script:
    reads: list[dict[str, Any]]
    watches: list[Refuse | Stream]
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    emitted: list[str] = field(default_factory=list)

    def read(self) -> dict[str, Any]:
        self.calls.append(("get",))
        return self.reads.pop(0)

    def watch(self, query: dict[str, Any]) -> Stream | Refuse:
        assert query["field_selector"] == "metadata.name=t"
        assert query["allow_watch_bookmarks"] is True
        self.calls.append(("watch", query["resource_version"]))
        return self.watches.pop(0)

    def lines(self, stream: Stream) -> list[bytes]:
        return [json.dumps(e).encode() + b"\n" for e in stream.events]


class SyncResponse:
    def __init__(self, script: Script, stream: Stream) -> None:
        self.chunks, self.broken = script.lines(stream), stream.broken

    def stream(self, amt: Any = None, decode_content: Any = None) -> Any:
        yield from self.chunks
        if self.broken:
            raise ProtocolError("connection reset")

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class SyncCustom:
    def __init__(self, script: Script) -> None:
        self.script = script

    def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        return self.script.read()

    def list_namespaced_custom_object(self, *args: Any, **query: Any) -> SyncResponse:
        step = self.script.watch(query)
        if isinstance(step, Refuse):
            raise ApiException(status=step.status, reason=f"refused {step.status}")
        return SyncResponse(self.script, step)


class AsyncContent:
    def __init__(self, chunks: list[bytes], broken: bool) -> None:
        self.chunks, self.broken = list(chunks), broken

    async def readany(self) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.broken:
            raise aiohttp.ClientPayloadError("connection reset")
        return b""


class AsyncResponse:
    def __init__(self, script: Script, stream: Stream) -> None:
        self.content = AsyncContent(script.lines(stream), stream.broken)

    def release(self) -> None:
        pass


class AsyncCustom:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        return self.script.read()

    async def list_namespaced_custom_object(self, *args: Any, **query: Any) -> AsyncResponse:
        step = self.script.watch(query)
        if isinstance(step, Refuse):
            raise AsyncApiException(status=step.status, reason=f"refused {step.status}")
        return AsyncResponse(self.script, step)


def _done(taskrun: dict[str, Any]) -> bool:
    return taskrun["status"]["phase"] == "Succeeded"


def _outcome(exc: BaseException | None) -> tuple[str, Any] | None:
    if exc is None:
        return None
    if isinstance(exc, (ApiException, AsyncApiException)):
        return ("ApiException", exc.status)
    return (type(exc).__name__, str(exc))


def run_sync(script: Script, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setattr(client, "_pause", lambda s: script.calls.append(("sleep", s)))
    api = TaskRunApi.__new__(TaskRunApi)
    api._custom = SyncCustom(script)  # type: ignore[assignment]
    raised = None
    try:
        for taskrun in api.versions("t", "ns", None):
            script.emitted.append(taskrun["metadata"]["resourceVersion"])
            if _done(taskrun):
                break
    except Exception as exc:
        raised = exc
    return script.calls, script.emitted, _outcome(raised)


def run_async(script: Script, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    async def pause(seconds: float) -> None:
        script.calls.append(("sleep", seconds))

    monkeypatch.setattr(client, "_pause_async", pause)
    api = AsyncTaskRunApi.__new__(AsyncTaskRunApi)
    api._custom = AsyncCustom(script)

    async def consume() -> BaseException | None:
        versions = api.watch("t", "ns", None)
        try:
            async for taskrun in versions:
                script.emitted.append(taskrun["metadata"]["resourceVersion"])
                if _done(taskrun):
                    return None
        except Exception as exc:
            return exc
        finally:
            await versions.aclose()
        raise AssertionError("the watch ended")

    raised = asyncio.run(consume())
    return script.calls, script.emitted, _outcome(raised)


SCRIPTS: dict[str, tuple[Any, list[tuple[Any, ...]], list[str], Any]] = {
    # name: (script factory, expected calls, expected versions handed on, expected end)
    "bookmarks_carry_the_resume_version": (
        lambda: Script(
            [tr(1, "Pending")],
            [
                Stream([bookmark(2), ev("MODIFIED", tr(3)), bookmark(4)]),
                Stream([ev("MODIFIED", tr(5, "Succeeded"))]),
            ],
        ),
        [("get",), ("watch", "1"), ("sleep", 1.0), ("watch", "4")],
        ["1", "3", "5"],
        None,
    ),
    "410_in_the_stream_reads_again": (
        lambda: Script(
            [tr(1, "Pending"), tr(7)],
            [
                Stream([ev("MODIFIED", tr(2)), error(410)]),
                Stream([ev("MODIFIED", tr(8, "Succeeded"))]),
            ],
        ),
        [("get",), ("watch", "1"), ("get",), ("watch", "7")],
        ["1", "2", "7", "8"],
        None,
    ),
    "410_on_open_reads_again": (
        lambda: Script(
            [tr(1, "Pending"), tr(3, "Succeeded")],
            [Refuse(410)],
        ),
        [("get",), ("watch", "1"), ("get",)],
        ["1", "3"],
        None,
    ),
    "dropped_watch_resumes_from_the_last_version": (
        lambda: Script(
            [tr(1, "Pending")],
            [
                Stream([ev("MODIFIED", tr(2))], broken=True),
                Stream([ev("ADDED", tr(3, "Succeeded"))]),
            ],
        ),
        [("get",), ("watch", "1"), ("sleep", 1.0), ("watch", "2")],
        ["1", "2", "3"],
        None,
    ),
    "504_refusals_are_retried": (
        lambda: Script(
            [tr(1, "Pending")],
            [Refuse(504), Stream([error(504)]), Stream([ev("MODIFIED", tr(2, "Succeeded"))])],
        ),
        [("get",), ("watch", "1"), ("sleep", 1.0), ("watch", "1"), ("sleep", 1.0), ("watch", "1")],
        ["1", "2"],
        None,
    ),
    "504_without_end_gives_up": (
        lambda: Script([tr(1, "Pending")], [Refuse(504)] * (WATCH_RETRIES + 1)),
        [("get",)]
        + [c for _ in range(WATCH_RETRIES) for c in (("watch", "1"), ("sleep", 1.0))]
        + [("watch", "1")],
        ["1"],
        (WatchRefused.__name__, "watch refused with 504: refused 504"),
    ),
    "error_event_is_raised": (
        lambda: Script([tr(1, "Pending")], [Stream([ev("MODIFIED", tr(2)), error(500)])]),
        [("get",), ("watch", "1")],
        ["1", "2"],
        ("ApiException", 500),
    ),
    "other_refusal_is_raised": (
        lambda: Script([tr(1, "Pending")], [Refuse(403)]),
        [("get",), ("watch", "1")],
        ["1"],
        ("ApiException", 403),
    ),
    "deleted_is_gone": (
        lambda: Script([tr(1, "Pending")], [Stream([ev("DELETED", tr(2))])]),
        [("get",), ("watch", "1")],
        ["1"],
        (TaskRunGone.__name__, "TaskRun ns/t was deleted"),
    ),
    "replaced_under_the_same_name_is_gone": (
        lambda: Script([tr(1, "Pending"), tr(9, "Succeeded", uid="u2")], [Refuse(410)]),
        [("get",), ("watch", "1"), ("get",)],
        ["1"],
        (TaskRunGone.__name__, "TaskRun ns/t was deleted (another TaskRun now has its name)"),
    ),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_both_clients_follow_the_script_alike(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, calls, emitted, end = SCRIPTS[name]
    sync = run_sync(make(), monkeypatch)
    async_ = run_async(make(), monkeypatch)
    assert sync == async_
    assert sync == (calls, emitted, end)


def test_wait_for_returns_the_version_the_predicate_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = SCRIPTS["410_in_the_stream_reads_again"][0]()
    monkeypatch.setattr(client, "_pause", lambda s: None)
    api = TaskRunApi.__new__(TaskRunApi)
    api._custom = SyncCustom(script)  # type: ignore[assignment]
    found = api.wait_for("t", "ns", lambda t: t["metadata"]["resourceVersion"] == "7")
    assert found == tr(7)
