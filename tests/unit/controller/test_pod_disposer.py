"""The pod disposer: a finished run's pod delete leaves the worker, and is never lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller import disposer as disposer_module
from controller import metrics
from controller.cache import ObjectCache
from controller.core.actions import CoreSettings, DeletePod, Observation
from controller.core.policies import decide
from controller.disposer import RETRY_DELAYS_SECONDS, PodDelete, PodDisposer, retry_delay
from controller.workqueue import Key

NOW = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
RUN_KEY: Key = ("ns", "t")
POD_KEY: Key = ("ns", "t-1")


class Api:
    """Stands in for the API client's delete_pod: records, and can hold or refuse deletes."""

    def __init__(self, refusals: int = 0) -> None:
        self.deleted: list[str] = []
        self.refused: list[str] = []
        self.refusals = refusals
        self.gate = asyncio.Event()
        self.gate.set()

    async def delete_pod(
        self, namespace: str, name: str, uid: str | None, grace_seconds: int | None = None
    ) -> None:
        await self.gate.wait()
        if self.refusals > 0:
            self.refusals -= 1
            self.refused.append(name)
            raise ConnectionResetError("connection lost")
        self.deleted.append(f"{namespace}/{name}/{uid}/{grace_seconds}")


def pod(name: str = "t-1", uid: str = "pod-uid") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": "5",
            "ownerReferences": [{"kind": "TaskRun", "name": "t", "controller": True}],
        },
        "status": {"phase": "Succeeded"},
    }


def finished_run() -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "ns", "uid": "run-uid"},
        "spec": {"image": "busybox"},
        "status": {
            "phase": "Succeeded",
            "reason": "Completed",
            "podName": "t-1",
            "completionTime": "2026-01-01T00:00:00Z",
        },
    }


def make(api: Api, cache: ObjectCache | None = None, **kwargs: Any) -> tuple[PodDisposer, Requeued]:
    requeued = Requeued()

    async def client() -> Any:
        return api

    disposer = PodDisposer(client, cache or ObjectCache(), requeued.add, **kwargs)
    return disposer, requeued


class Requeued(list[Key]):
    """The keys the disposer queued again; ``arrived`` is set by each."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def add(self, key: Key) -> None:
        self.append(key)
        self.arrived.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.arrived.wait(), 5)
        self.arrived.clear()


def delete(name: str = "t-1", uid: str = "pod-uid") -> PodDelete:
    return PodDelete(key=RUN_KEY, name=name, uid=uid, grace_seconds=None)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 5.0), (4, 10.0), (5, 30.0), (6, 60.0), (50, 60.0)],
)
def test_retry_delay(failures: int, delay: float) -> None:
    assert retry_delay(failures) == delay


@given(st.integers(min_value=0, max_value=10_000))
def test_retry_delay_grows_and_is_bounded(failures: int) -> None:
    assert retry_delay(failures) <= retry_delay(failures + 1) <= max(RETRY_DELAYS_SECONDS)
    assert retry_delay(failures) >= min(RETRY_DELAYS_SECONDS)


async def test_dispose_marks_the_pod_deleting_at_once_and_deletes_after() -> None:
    api = Api()
    api.gate.clear()
    cache = ObjectCache()
    cache.wrote_pod(POD_KEY, pod())
    disposer, _ = make(api, cache)
    assert disposer.dispose(delete())
    # The worker goes on at once: nothing was sent, yet the next decision sees it deleting.
    await asyncio.sleep(0)
    assert api.deleted == []
    assert cache.pod(POD_KEY)["metadata"]["deletionTimestamp"] == "requested"
    assert disposer.pending == 1
    assert metrics.METRICS.pod_deletes_pending._value.get() == 1
    api.gate.set()
    await disposer.flushed()
    assert api.deleted == ["ns/t-1/pod-uid/None"]
    assert disposer.pending == 0
    assert metrics.METRICS.pod_deletes_pending._value.get() == 0


@pytest.mark.parametrize(
    ("max_pending", "disposed", "queued"),
    [(3, 3, 3), (3, 4, 3), (1, 5, 1)],
)
async def test_a_full_buffer_hands_the_delete_back_to_the_worker(
    max_pending: int, disposed: int, queued: int
) -> None:
    api = Api()
    api.gate.clear()
    cache = ObjectCache()
    disposer, _ = make(api, cache, max_pending=max_pending, posters=1)
    taken = [disposer.dispose(delete(f"t-{i}", f"uid-{i}")) for i in range(disposed)]
    # The poster has not taken any yet: the first ``queued`` fit, the rest go back.
    assert taken == [True] * queued + [False] * (disposed - queued)
    assert disposer.inline == disposed - queued
    for i in range(disposed):
        cache.wrote_pod(("ns", f"t-{i}"), pod(f"t-{i}", f"uid-{i}"))
        marked = "deletionTimestamp" in cache.pod(("ns", f"t-{i}"))["metadata"]
        # one handed back is not marked: the worker marks it after its own delete
        assert marked == (i < queued)
    api.gate.set()
    await disposer.flushed()
    assert len(api.deleted) == queued


async def test_a_refused_delete_is_decided_again_after_a_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(disposer_module, "RETRY_DELAYS_SECONDS", (0.05, 0.1))
    api = Api(refusals=2)
    cache = ObjectCache()
    cache.wrote_pod(POD_KEY, pod())
    disposer, requeued = make(api, cache)
    failed_before = metrics.METRICS.pod_deletes_failed._value.get()
    loop = asyncio.get_running_loop()

    assert disposer.dispose(delete())
    await disposer.flushed()
    assert api.refused == ["t-1"]
    # Until the backoff ends the pod still shows deleting: no reconcile asks again at once.
    assert "deletionTimestamp" in cache.pod(POD_KEY)["metadata"]
    assert requeued == []
    started = loop.time()
    await requeued.next()
    assert loop.time() - started >= 0.04
    assert requeued == [RUN_KEY]
    assert "deletionTimestamp" not in cache.pod(POD_KEY)["metadata"]

    # The second refusal waits the second, longer delay.
    assert disposer.dispose(delete())
    await disposer.flushed()
    started = loop.time()
    await requeued.next()
    assert loop.time() - started >= 0.09
    assert metrics.METRICS.pod_deletes_failed._value.get() - failed_before == 2

    assert disposer.dispose(delete())
    await disposer.flushed()
    assert api.deleted == ["ns/t-1/pod-uid/None"]
    await disposer.close()


async def test_close_drops_queued_deletes_and_retries() -> None:
    api = Api(refusals=1)
    api.gate.clear()
    disposer, requeued = make(api, posters=1)
    disposer.dispose(delete("t-1", "u1"))
    disposer.dispose(delete("t-2", "u2"))
    await asyncio.sleep(0)
    await disposer.close()
    api.gate.set()
    await asyncio.sleep(0.05)
    # Left for the next start's reconciles, which see both pods still there.
    assert api.deleted == [] and api.refused == [] and requeued == []
    assert disposer.pending == 0
    # A reconcile still in flight deletes on its worker.
    assert not disposer.dispose(delete("t-3", "u3"))


async def test_close_cancels_a_refused_deletes_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disposer_module, "RETRY_DELAYS_SECONDS", (0.05,))
    api = Api(refusals=1)
    disposer, requeued = make(api)
    disposer.dispose(delete())
    await disposer.flushed()
    assert api.refused == ["t-1"]
    await disposer.close()
    await asyncio.sleep(0.1)
    assert requeued == []


def test_a_finished_run_whose_delete_was_refused_gets_the_delete_decided_again() -> None:
    """The retry's contract with the decision: deleting -> nothing; refused -> DeletePod."""
    cache = ObjectCache()
    cache.wrote_pod(POD_KEY, pod())
    settings = CoreSettings()

    def actions() -> list[Any]:
        obs = Observation(taskrun=finished_run(), pod=cache.pod(POD_KEY), now=NOW)
        return decide(obs, settings).actions

    assert actions() == [DeletePod(name="t-1", uid="pod-uid")]
    cache.deleting("pod-uid")
    assert actions() == []
    cache.delete_refused("pod-uid")
    assert actions() == [DeletePod(name="t-1", uid="pod-uid")]
