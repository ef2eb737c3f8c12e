"""A burst of TaskRuns with zero-length pods: throughput, latency, API cost, CPU, memory.

Latencies are taken from one observer's watches on pods and TaskRuns, so both ends
of a latency are stamped by the same clock after the same network hop.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import Api, gather_limited
from bench.procstat import sample
from devcluster.scenario import SCENARIO_ANNOTATION
from taskrun.api import API_VERSION, FINISHED_PHASES, LABEL_NAME, PLURAL

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
ZERO_POD = {"runSeconds": 0, "logs": ""}


@dataclass
class Observed:
    created: dict[str, float] = field(default_factory=dict)
    pod_created: dict[str, float] = field(default_factory=dict)
    pod_terminal: dict[str, float] = field(default_factory=dict)
    run_terminal: dict[str, float] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)


@dataclass
class BurstResult:
    n: int
    rate: float | None  # TaskRuns/s offered; None = as fast as the client can
    events: bool
    seconds: float
    throughput: float
    finished: int
    succeeded: int
    create_to_pod_ms: dict[str, float]
    pod_to_run_ms: dict[str, float]
    requests_per_run: float
    writes_per_run: float
    writes_per_run_without_events: float
    writes_by_kind: dict[str, float]
    cpu_seconds_per_run: float
    peak_rss_mb: float
    latencies_pod_to_run_ms: list[float]
    # CPU of the benchmark's own process: devcluster (API server + kubelet) and the harness
    # (creates, the observer's watches), which share it.
    cluster_cpu_seconds_per_run: float = float("nan")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1]}


async def _observe(api: Api, obs: Observed, stop: asyncio.Event, n: int) -> None:
    async def pods() -> None:
        async for event in api.watch("/api/v1/pods"):
            obj = event.get("object", {})
            run = obj.get("metadata", {}).get("labels", {}).get(LABEL_NAME)
            if not run:
                continue
            now = time.monotonic()
            obs.pod_created.setdefault(run, now)
            if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                obs.pod_terminal.setdefault(run, now)

    async def runs() -> None:
        async for event in api.watch(f"/apis/{API_VERSION}/{PLURAL}"):
            obj = event.get("object", {})
            name = obj.get("metadata", {}).get("name")
            phase = obj.get("status", {}).get("phase")
            if name and phase in FINISHED_PHASES and name not in obs.run_terminal:
                obs.run_terminal[name] = time.monotonic()
                obs.phases[name] = phase
                # All n, not all created so far: a paced run catches up between creates.
                if len(obs.run_terminal) >= n:
                    stop.set()

    tasks = [asyncio.create_task(pods()), asyncio.create_task(runs())]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_burst(
    cluster: Any,
    controller_pid: int,
    n: int,
    *,
    rate: float | None = None,
    namespace: str = "bench",
    timeout: float = 600,
    events: bool = True,
) -> BurstResult:
    api = Api(cluster.url)
    try:
        await api.create_namespace(namespace)
        obs = Observed()
        stop = asyncio.Event()
        observer = asyncio.create_task(_observe(api, obs, stop, n))
        await asyncio.sleep(0.2)  # let the observer's watches open before the first create
        cluster.requests.clear()
        before = sample(controller_pid)
        before_cluster = sample(os.getpid())
        started = time.monotonic()
        spec: dict[str, Any] = {
            "image": "busybox",
            "annotations": {SCENARIO_ANNOTATION: json.dumps(ZERO_POD)},
        }

        async def create(i: int) -> None:
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            name = f"b{i:05d}"
            obs.created[name] = time.monotonic()
            await api.create_taskrun(namespace, name, spec)

        await gather_limited([create(i) for i in range(n)], limit=32)
        try:
            await asyncio.wait_for(stop.wait(), timeout)
        except TimeoutError:
            stop.set()
        await observer
        elapsed = max(obs.run_terminal.values(), default=time.monotonic()) - started
        after = sample(controller_pid)
        after_cluster = sample(os.getpid())
        records = [r for r in cluster.requests.records if r.user_agent != "bench"]
        writes = [r for r in records if r.verb in WRITE_VERBS]
        by_kind: dict[str, float] = {}
        for r in writes:
            key = f"{r.verb} {r.resource}" + (f"/{r.subresource}" if r.subresource else "")
            by_kind[key] = by_kind.get(key, 0) + 1 / n
        without_events = [r for r in writes if r.resource != "events"]
        pod_to_run = [
            (obs.run_terminal[k] - obs.pod_terminal[k]) * 1000
            for k in obs.run_terminal
            if k in obs.pod_terminal
        ]
        create_to_pod = [
            (obs.pod_created[k] - obs.created[k]) * 1000
            for k in obs.pod_created
            if k in obs.created
        ]
        return BurstResult(
            n=n,
            rate=rate,
            events=events,
            seconds=elapsed,
            throughput=len(obs.run_terminal) / elapsed if elapsed > 0 else 0.0,
            finished=len(obs.run_terminal),
            succeeded=sum(1 for p in obs.phases.values() if p == "Succeeded"),
            create_to_pod_ms=percentiles(create_to_pod),
            pod_to_run_ms=percentiles(pod_to_run),
            requests_per_run=len(records) / n,
            writes_per_run=len(writes) / n,
            writes_per_run_without_events=len(without_events) / n,
            writes_by_kind=dict(sorted(by_kind.items())),
            cpu_seconds_per_run=(after.cpu_seconds - before.cpu_seconds) / n,
            peak_rss_mb=after.peak_rss_bytes / 2**20,
            latencies_pod_to_run_ms=pod_to_run,
            cluster_cpu_seconds_per_run=(after_cluster.cpu_seconds - before_cluster.cpu_seconds)
            / n,
        )
    finally:
        await api.close()


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
