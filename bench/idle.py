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


def finished_status(started: str, completed: str) -> dict[str, Any]:
    """The status of a TaskRun that succeeded at its first attempt (without its podName)."""
    return {
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
                "lastTransitionTime": started,
            }
        ],
        "startTime": started,
        "completionTime": completed,
    }


FINISHED = finished_status("2026-11-24T00:00:00Z", "2026-11-24T00:00:01Z")


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
    # The window starts once the controller's start-up is over: its initial lists, watches
    # and first pass over every TaskRun, i.e. no request from it for QUIET_SECONDS (a
    # window started earlier counts start-up requests as idle ones).
    settle = _wait_quiet(cluster, pid)
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


QUIET_SECONDS = 3.0
# CPU (seconds per second) below which the controller counts as settled.
QUIET_CPU = 0.02


def _wait_quiet(cluster: Any, pid: int, limit: float = 180.0) -> float:
    """When the controller went quiet (monotonic): no request from it and next to no CPU
    for QUIET_SECONDS, i.e. its initial pass over every TaskRun is over. At most ``limit``."""
    deadline = time.monotonic() + limit
    seen, last = -1, time.monotonic()
    cpu = sample(pid).cpu_seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        count = sum(1 for r in cluster.requests.records if r.user_agent != "bench")
        now_cpu = sample(pid).cpu_seconds
        busy = (now_cpu - cpu) / 0.5 > QUIET_CPU
        cpu = now_cpu
        if count != seen or busy:
            seen, last = count, time.monotonic()
        elif time.monotonic() - last >= QUIET_SECONDS:
            return last
    return time.monotonic()


def run_populate(url: str, n: int) -> None:
    asyncio.run(populate(url, n))


__all__ = ["IdleResult", "measure_idle", "run_populate"]
