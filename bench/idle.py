"""Idle cost: what the controller spends while 10,000 finished TaskRuns sit in the cluster."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.cluster import Api, gather_limited
from bench.procstat import sample


@dataclass
class IdleResult:
    taskruns: int
    seconds: float
    cpu_percent: float
    rss_mb: float
    peak_rss_mb: float
    requests_per_minute: float
    writes_per_minute: float
    startup_seconds: float


FINISHED = {
    "phase": "Succeeded",
    "reason": "Succeeded",
    "exitCode": 0,
    "attempts": 1,
    "conditions": [
        {
            "type": "Succeeded",
            "status": "True",
            "reason": "Succeeded",
            "message": "",
            "lastTransitionTime": "2026-11-24T00:00:00Z",
        }
    ],
    "startTime": "2026-11-24T00:00:00Z",
    "completionTime": "2026-11-24T00:00:01Z",
}


async def populate(url: str, n: int, namespace: str = "idle") -> None:
    """n TaskRuns that finished before the controller started (status written directly)."""
    api = Api(url)
    try:
        await api.create_namespace(namespace)
        spec = {"image": "busybox", "onFinishAction": "delete_pod"}

        async def one(i: int) -> None:
            name = f"done{i:05d}"
            await api.create_taskrun(namespace, name, spec)
            await api.patch_status(namespace, name, {**FINISHED, "podName": f"{name}-1"})

        await gather_limited([one(i) for i in range(n)], limit=32)
    finally:
        await api.close()


def measure_idle(cluster: Any, pid: int, n: int, seconds: float, started: float) -> IdleResult:
    # The controller has listed everything once its watches are open; give it a moment to
    # settle its initial pass before the window starts.
    settle = time.monotonic()
    cluster.requests.clear()
    before = sample(pid)
    time.sleep(seconds)
    after = sample(pid)
    records = [r for r in cluster.requests.records if r.user_agent != "bench"]
    writes = [r for r in records if r.verb in {"create", "update", "patch", "delete"}]
    return IdleResult(
        taskruns=n,
        seconds=seconds,
        cpu_percent=100 * (after.cpu_seconds - before.cpu_seconds) / seconds,
        rss_mb=after.rss_bytes / 2**20,
        peak_rss_mb=after.peak_rss_bytes / 2**20,
        requests_per_minute=len(records) * 60 / seconds,
        writes_per_minute=len(writes) * 60 / seconds,
        startup_seconds=settle - started,
    )


def run_populate(url: str, n: int) -> None:
    asyncio.run(populate(url, n))


__all__ = ["IdleResult", "measure_idle", "run_populate"]
