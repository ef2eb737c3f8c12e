"""`python -m bench.real`: the TaskRun controller and Kubernetes' Job controller side by side
on the real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with
the node agent playing the pods (issue 17).

    python -m bench.real            # N = 1,000 and 5,000 in a burst, 3,000 at 50/s, idle 10,000
    python -m bench.real --quick    # small sizes, a smoke run of a few minutes

One control plane per request budget ("default": each controller as shipped; "equal": no
client-side limit on either side), and on it, one after the other, a TaskRun run and a Job run
of each shape, so both controllers meet the same API server, etcd, scheduler and node. The
idle figures come from a fresh control plane holding only the finished objects. Figures land
in bench/results/real.json (real-quick.json with --quick) and docs/benchmarks.md's first
section (bench/real_report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.burst import percentiles
from bench.cluster import controller_python, gather_limited, running_controller_audited
from bench.idle import finished_status
from bench.procstat import sample
from devcluster.node import NODE_NAME, AgentProcess
from realcluster.controlplane import CONTROLLERS, JOB_CONTROLLERS, ControlPlane
from taskrun.api import API_VERSION, FINISHED_PHASES, GROUP, LABEL_NAME, PLURAL, VERSION
from testcluster import kubeconfig, rbac
from testcluster.audit import AuditRecord, AuditRequests
from testcluster.client import Kube

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCENARIO = "devcluster.taskrun.dev/scenario"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
HARNESS_AGENT = "bench-real"

# The request budgets. "default": kube-controller-manager as shipped (--kube-api-qps 20,
# --kube-api-burst 30, per controller since each has its own client under
# --use-service-account-credentials; --concurrent-job-syncs 5) and the TaskRun controller as
# shipped (no client-side rate limit, --max-workers 20). "equal": no client-side limit on
# either side (a QPS no run here comes near) and 20 workers each.
BUDGETS: dict[str, tuple[str, ...]] = {
    "default": (),
    "equal": (
        "--kube-api-qps=100000",
        "--kube-api-burst=100000",
        "--concurrent-job-syncs=20",
    ),
}
# Neither controller under test should wait on the scheduler or the node: kube-scheduler's
# client gets the same unbounded budget (its default, 50 QPS, would cap every run at 50
# binds/s), and the node takes more pods than any run holds (the kubelet's default 110 would
# cap a fixed-length burst at 110 pods running).
SCHEDULER_ARGS = ("--kube-api-qps=100000", "--kube-api-burst=100000")
NODE_MAX_PODS = 100_000

ADMIN = "admin"
JOB_USERS_PREFIX = "system:serviceaccount:kube-system:"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


# -- processes ---------------------------------------------------------------------------


class Sampler:
    """CPU and peak RSS of named processes over a window, sampled every ``period`` seconds in
    a thread (peak RSS in the window; VmHWM would be the peak since the process started)."""

    def __init__(self, pids: dict[str, int], period: float = 0.5) -> None:
        self.pids = pids
        self.period = period
        self.peak_rss: dict[str, int] = dict.fromkeys(pids, 0)
        self._first = {n: sample(p) for n, p in pids.items()}
        self._last = dict(self._first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()
        self.load_before = os.getloadavg()
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self._tick()
            if self._stop.wait(self.period):
                return

    def _tick(self) -> None:
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                s = sample(pid)
                self._last[name] = s
                self.peak_rss[name] = max(self.peak_rss[name], s.rss_bytes)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._tick()
        seconds = time.monotonic() - self.started
        return {
            "seconds": seconds,
            "cpu_ms": {
                n: 1000 * (self._last[n].cpu_seconds - self._first[n].cpu_seconds)
                for n in self.pids
            },
            "peak_rss_mb": {n: self.peak_rss[n] / 2**20 for n in self.pids},
            "rss_mb": {n: self._last[n].rss_bytes / 2**20 for n in self.pids},
            # VmHWM: the peak since the process started (a controller's start-up list).
            "hwm_mb": {n: self._last[n].peak_rss_bytes / 2**20 for n in self.pids},
            "load_before": list(self.load_before),
            "load_after": list(os.getloadavg()),
        }


@dataclass
class Plane:
    """A control plane, its node agent, the audit log and the controller's identity."""

    plane: ControlPlane
    node: AgentProcess
    kube: Kube
    audit: AuditRequests
    controller_kubeconfig: Path
    controller_user: str
    endpoint: kubeconfig.Endpoint

    def pids(self) -> dict[str, int]:
        pids = {name: self.plane.component(name).pid or 0 for name in COMPONENTS}
        assert self.node.process is not None
        pids["node-agent"] = self.node.process.pid
        pids["harness"] = os.getpid()
        return pids

    def records(self) -> list[AuditRecord]:
        """Every request answered so far (AuditRequests reads the log up to a barrier)."""
        return [r for r in self.audit.records if isinstance(r, AuditRecord)]


@contextlib.contextmanager
def running_plane(workdir: Path, budget: str) -> Iterator[Plane]:
    plane = ControlPlane(
        workdir=workdir,
        controllers=JOB_CONTROLLERS,
        controller_manager_args=BUDGETS[budget],
        scheduler_args=SCHEDULER_ARGS,
    )
    with plane:
        # The admin's kubeconfig, as realcluster's launcher and fixture give it: as
        # system:node:<name>, NodeRestriction refuses the agent's Node (it sets taints). Its
        # requests are told from the harness's by user agent.
        node = AgentProcess(
            plane.kubeconfig,
            "--max-pods",
            str(NODE_MAX_PODS),
            name=NODE_NAME,
            log_path=plane.workdir / "logs" / "node-agent.log",
        )
        with node:
            endpoint = kubeconfig.load(plane.kubeconfig)
            kube = Kube(endpoint, user_agent=HARNESS_AGENT)
            kube.apply_file(ROOT / "crds" / "taskrun.yaml")
            kube.wait_established(f"{PLURAL}.{GROUP}", timeout=60)
            namespace, account = rbac.install_identity(kube, "base")
            controller_kubeconfig = rbac.token_kubeconfig(
                kube, plane.kubeconfig, namespace, account, workdir / "controller.kubeconfig"
            )
            audit = AuditRequests(plane.audit_log)
            audit.barrier = lambda token: kube.get_or_none("configmaps", "default", token)
            yield Plane(
                plane,
                node,
                kube,
                audit,
                controller_kubeconfig,
                rbac.service_account_user(namespace, account),
                endpoint,
            )


def running_controller(p: Plane) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """``python -m controller`` with deploy/base's ServiceAccount and RBAC; yields once it
    watches TaskRuns and pods (its watch requests are in the audit log)."""
    log = p.plane.workdir / "logs" / "controller.log"
    return running_controller_audited(
        p.controller_kubeconfig, p.controller_user, p.records, log, timeout=120
    )


# -- the load ----------------------------------------------------------------------------


class AsyncApi:
    """The harness's client: admin, its own user agent, one keep-alive session."""

    def __init__(self, endpoint: kubeconfig.Endpoint) -> None:
        self.url = endpoint.server
        self.ssl: ssl.SSLContext | bool = endpoint.ssl_context or False
        self.rewatches = 0
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, ssl=self.ssl),
            headers={"User-Agent": HARNESS_AGENT, **endpoint.headers},
        )

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self.url + path, data=data, headers=headers
        ) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status}: {await resp.text()}")
            result: dict[str, Any] = await resp.json()
            return result

    async def watch(self, path: str) -> AsyncIterator[dict[str, Any]]:
        """Watch events of ``path`` for as long as the caller iterates.

        kube-apiserver closes a watch whose client falls behind (its buffer fills while
        the harness, on a busy machine, parses): the watch is opened again from the last
        resourceVersion seen, or listed afresh when that is too old (410), whose items come
        as ADDED events (the caller keeps the first time it sees each state)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        rv = ""
        while True:
            params = {"watch": "true", "allowWatchBookmarks": "true"}
            if rv:
                params["resourceVersion"] = rv
            async with self.session.get(self.url + path, params=params, timeout=timeout) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"watch {path}: {resp.status}: {await resp.text()}")
                async for line in resp.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        if (event.get("object") or {}).get("code") == 410:
                            listed = await self.call("GET", path)
                            rv = listed["metadata"]["resourceVersion"]
                            for item in listed.get("items") or []:
                                yield {"type": "ADDED", "object": item}
                            break
                        raise RuntimeError(f"watch {path}: {event.get('object')}")
                    rv = ((event.get("object") or {}).get("metadata") or {}).get(
                        "resourceVersion", rv
                    )
                    if event.get("type") != "BOOKMARK":
                        yield event
            self.rewatches += 1


@dataclass(frozen=True)
class Kind:
    """What differs between the two controllers for the harness."""

    name: str  # a key of KINDS
    controller: str  # "taskrun" | "job": whose controller runs it
    prefix: str  # of its namespaces' names
    path: str  # collection path template, {ns}
    pod_label: str  # the label on a pod naming its owner
    make: Callable[[str, str, dict[str, Any]], dict[str, Any]]
    terminal: Callable[[dict[str, Any]], str | None]


def _taskrun(namespace: str, name: str, scenario: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TaskRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": "busybox", "annotations": {SCENARIO: json.dumps(scenario)}},
    }


def _taskrun_with(**spec: Any) -> Callable[[str, str, dict[str, Any]], dict[str, Any]]:
    def make(namespace: str, name: str, scenario: dict[str, Any]) -> dict[str, Any]:
        manifest = _taskrun(namespace, name, scenario)
        manifest["spec"].update(spec)
        return manifest

    return make


def _job(namespace: str, name: str, scenario: dict[str, Any]) -> dict[str, Any]:
    # One pod, no retry: what a TaskRun with its defaults is.
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {SCENARIO: json.dumps(scenario)}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "base", "image": "busybox"}],
                },
            },
        },
    }


def _taskrun_terminal(obj: dict[str, Any]) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return str(phase) if phase in FINISHED_PHASES else None


def _job_terminal(obj: dict[str, Any]) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return "Succeeded" if c["type"] == "Complete" else "Failed"
    return None


TASKRUNS = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{PLURAL}"
KINDS = {
    "taskrun": Kind("taskrun", "taskrun", "tas", TASKRUNS, LABEL_NAME, _taskrun, _taskrun_terminal),
    # Closer to a Job, which keeps its pod (no pod delete at the end) and reads no log.
    "taskrun-keep": Kind(
        "taskrun-keep",
        "taskrun",
        "tak",
        TASKRUNS,
        LABEL_NAME,
        _taskrun_with(onFinishAction="keep_pod"),
        _taskrun_terminal,
    ),
    "taskrun-lean": Kind(
        "taskrun-lean",
        "taskrun",
        "tal",
        TASKRUNS,
        LABEL_NAME,
        _taskrun_with(onFinishAction="keep_pod", getLogs=False),
        _taskrun_terminal,
    ),
    "job": Kind(
        "job",
        "job",
        "job",
        "/apis/batch/v1/namespaces/{ns}/jobs",
        "batch.kubernetes.io/job-name",
        _job,
        _job_terminal,
    ),
}


@dataclass
class Observed:
    created: dict[str, float] = field(default_factory=dict)
    pod_created: dict[str, float] = field(default_factory=dict)
    pod_terminal: dict[str, float] = field(default_factory=dict)
    terminal: dict[str, float] = field(default_factory=dict)
    outcome: dict[str, str] = field(default_factory=dict)
    rewatches: int = 0  # watches the API server closed on the harness (see AsyncApi.watch)


async def _observe(
    api: AsyncApi, kind: Kind, namespace: str, obs: Observed, n: int, done: asyncio.Event
) -> None:
    """Stamps every pod and object transition by one clock after the same hop."""

    async def pods() -> None:
        async for event in api.watch(f"/api/v1/namespaces/{namespace}/pods"):
            obj = event.get("object") or {}
            owner = ((obj.get("metadata") or {}).get("labels") or {}).get(kind.pod_label)
            if not owner:
                continue
            now = time.monotonic()
            obs.pod_created.setdefault(owner, now)
            if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                obs.pod_terminal.setdefault(owner, now)

    async def objects() -> None:
        async for event in api.watch(kind.path.format(ns=namespace)):
            obj = event.get("object") or {}
            name = (obj.get("metadata") or {}).get("name")
            outcome = kind.terminal(obj)
            if name and outcome and name not in obs.terminal:
                obs.terminal[name] = time.monotonic()
                obs.outcome[name] = outcome
                if len(obs.terminal) >= n:
                    done.set()

    tasks = [asyncio.create_task(pods()), asyncio.create_task(objects())]
    waiter = asyncio.create_task(done.wait())
    try:
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            if t.done():
                # A watch that ends or fails would leave the run waiting for its timeout.
                raise RuntimeError(f"the observer's watch ended: {t.exception()!r}")
    finally:
        waiter.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(waiter, *tasks, return_exceptions=True)


async def _drive(
    p: Plane,
    kind: Kind,
    namespace: str,
    n: int,
    scenario: dict[str, Any],
    rate: float | None,
    timeout: float,
    on_start: Callable[[], None],
) -> tuple[Observed, float]:
    api = AsyncApi(p.endpoint)
    try:
        await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        obs = Observed()
        done = asyncio.Event()
        observer = asyncio.create_task(_observe(api, kind, namespace, obs, n, done))
        await asyncio.sleep(0.5)  # the observer's watches open before the first create
        on_start()
        started = time.monotonic()

        async def create(i: int) -> None:
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            name = f"r{i:05d}"
            obs.created[name] = time.monotonic()
            body = kind.make(namespace, name, scenario)
            await api.call("POST", kind.path.format(ns=namespace), body)

        await gather_limited([create(i) for i in range(n)], limit=32)
        # The observer returns once all n are terminal, or raises if a watch broke.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(observer), timeout)
        done.set()
        await observer
        obs.rewatches = api.rewatches
        return obs, started
    finally:
        await api.close()


def _wait_quiet(p: Plane, users: set[str], quiet: float = 3.0, limit: float = 60.0) -> float:
    """Waits until none of ``users`` has made a request for ``quiet`` seconds (a controller's
    work for a run goes on after the run's last status: pod deletions, finalizers)."""
    deadline = time.monotonic() + limit
    seen, last = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = sum(1 for r in p.records() if r.user in users)
        if count != seen:
            seen, last = count, time.monotonic()
        elif time.monotonic() - last >= quiet:
            break
        time.sleep(0.5)
    return time.monotonic()


def _requests(records: list[Any], n: int) -> dict[str, Any]:
    """Requests per run by client (user), and by verb and resource; Events apart."""
    by_user: dict[str, dict[str, float]] = {}
    for r in records:
        key = f"{r.verb} {r.resource}" + (f"/{r.subresource}" if r.subresource else "")
        user = r.user
        if r.user_agent == HARNESS_AGENT:
            user = "harness"
        elif r.user == ADMIN:
            user = "node-agent"
        row = by_user.setdefault(user, {})
        row[key] = row.get(key, 0) + 1 / n
    return {u: dict(sorted(rows.items())) for u, rows in sorted(by_user.items())}


def _totals(rows: dict[str, float]) -> dict[str, float]:
    def of(pred: Callable[[str, str], bool]) -> float:
        total = 0.0
        for key, count in rows.items():
            verb, resource = key.split(" ", 1)
            if pred(verb, resource):
                total += count
        return total

    # Event writes apart (best effort, and a controller's choice of verbosity); reads of
    # Events are requests like any other.
    return {
        "requests": of(lambda v, r: not (r == "events" and v in WRITE_VERBS)),
        "writes": of(lambda v, r: v in WRITE_VERBS and r != "events"),
        "events": of(lambda v, r: v in WRITE_VERBS and r == "events"),
    }


def latency_by_request(records: list[Any], users: set[str]) -> dict[str, dict[str, float]]:
    """The API server's time over each kind of request of ``users`` (p50/p99 ms; from the
    audit log: request received to response complete), watches left out."""
    by: dict[str, list[float]] = {}
    for r in records:
        if r.user in users and r.verb not in ("watch", ""):
            key = f"{r.verb} {r.resource}" + (f"/{r.subresource}" if r.subresource else "")
            by.setdefault(key, []).append(r.duration * 1000)
    return {
        key: {"n": len(v), **{q: percentiles(v)[q] for q in ("p50", "p99")}}
        for key, v in sorted(by.items())
    }


def controller_users(kind: str, p: Plane) -> set[str]:
    if kind == "taskrun":
        return {p.controller_user}
    # What kube-controller-manager spends on a Job's life: the Job controller, and the
    # garbage collector and TTL controller that watch Jobs and pods.
    return {
        JOB_USERS_PREFIX + "job-controller",
        JOB_USERS_PREFIX + "ttl-after-finished-controller",
        JOB_USERS_PREFIX + "generic-garbage-collector",
    }


def run_one(
    p: Plane,
    kind_name: str,
    label: str,
    n: int,
    scenario: dict[str, Any],
    rate: float | None,
    timeout: float,
) -> dict[str, Any]:
    kind = KINDS[kind_name]
    namespace = f"{kind.prefix}-{label}"
    users = controller_users(kind.controller, p)
    with contextlib.ExitStack() as stack:
        controller_pid = None
        if kind.controller == "taskrun":
            controller_pid = stack.enter_context(running_controller(p)).pid
        pids = p.pids()
        if controller_pid:
            pids["controller"] = controller_pid
        else:
            pids["controller"] = pids["kube-controller-manager"]
        holder: dict[str, Any] = {}

        def on_start() -> None:
            p.audit.clear()
            holder["sampler"] = Sampler(pids)

        obs, started = asyncio.run(_drive(p, kind, namespace, n, scenario, rate, timeout, on_start))
        last_status = max(obs.terminal.values(), default=time.monotonic())
        _wait_quiet(p, users)
        usage = holder["sampler"].stop()
        records = [r for r in p.records() if r.namespace in (namespace, "")]
    requests = _requests(records, n)
    # How long the API server took over the controller's requests (watches left out): a
    # controller with a fixed number of workers is bound by this latency.
    durations = [
        r.duration * 1000 for r in records if r.user in users and r.verb not in ("watch", "")
    ]
    by_kind = latency_by_request(records, users)
    controller_rows: dict[str, float] = {}
    for user in users:
        for key, count in requests.get(user, {}).items():
            controller_rows[key] = controller_rows.get(key, 0) + count
    elapsed = last_status - started
    create_to_terminal = [
        (obs.terminal[k] - obs.created[k]) * 1000 for k in obs.terminal if k in obs.created
    ]
    pod_to_status = [
        (obs.terminal[k] - obs.pod_terminal[k]) * 1000
        for k in obs.terminal
        if k in obs.pod_terminal
    ]
    create_to_pod = [
        (obs.pod_created[k] - obs.created[k]) * 1000 for k in obs.pod_created if k in obs.created
    ]
    result = {
        "kind": kind_name,
        "label": label,
        "n": n,
        "rate": rate,
        "run_seconds": scenario.get("runSeconds", 0),
        "finished": len(obs.terminal),
        "succeeded": sum(1 for o in obs.outcome.values() if o == "Succeeded"),
        "seconds": elapsed,
        "throughput": len(obs.terminal) / elapsed if elapsed > 0 else 0.0,
        "create_to_terminal_ms": percentiles(create_to_terminal),
        "pod_to_status_ms": percentiles(pod_to_status),
        "create_to_pod_ms": percentiles(create_to_pod),
        "controller_request_ms": percentiles(durations),
        "controller_request_ms_by_kind": by_kind,
        "harness_rewatches": obs.rewatches,
        "controller_users": sorted(users),
        "controller": _totals(controller_rows),
        "controller_requests": dict(sorted(controller_rows.items())),
        "requests_by_user": requests,
        "usage": usage,
        "controller_cpu_ms_per_run": usage["cpu_ms"]["controller"] / n,
        "controller_peak_rss_mb": usage["peak_rss_mb"]["controller"],
        # Raw series for the plots, rounded (ms; seconds since the first create).
        "latencies_create_to_terminal_ms": [round(v, 1) for v in sorted(create_to_terminal)],
        "latencies_pod_to_status_ms": [round(v, 1) for v in sorted(pod_to_status)],
        "completion_times_s": [round(t - started, 3) for t in sorted(obs.terminal.values())],
    }
    c = result["controller"]
    print(
        f"  {kind_name:7} {label:18} {result['finished']}/{n} in {elapsed:6.1f} s = "
        f"{result['throughput']:6.1f}/s; create->terminal p50/p99 "
        f"{result['create_to_terminal_ms']['p50']:.0f}/{result['create_to_terminal_ms']['p99']:.0f}"
        f" ms; pod->status p50/p99 {result['pod_to_status_ms']['p50']:.0f}/"
        f"{result['pod_to_status_ms']['p99']:.0f} ms; controller req/run {c['requests']:.2f} "
        f"writes {c['writes']:.2f} events {c['events']:.2f}; CPU ms/run "
        f"{result['controller_cpu_ms_per_run']:.1f}; load {usage['load_after'][0]:.2f}",
        flush=True,
    )
    return result


# -- idle ----------------------------------------------------------------------------------

NOW = "2026-12-05T00:00:00Z"
LATER = "2026-12-05T00:00:01Z"
TASKRUN_DONE = finished_status(NOW, LATER)
JOB_DONE = {
    "startTime": NOW,
    "completionTime": LATER,
    "succeeded": 1,
    "terminating": 0,
    "ready": 0,
    "conditions": [
        {"type": t, "status": "True", "reason": "CompletionsReached", "message": "Reached "
         "expected number of succeeded pods", "lastProbeTime": LATER,
         "lastTransitionTime": LATER}
        for t in ("SuccessCriteriaMet", "Complete")
    ],
}  # fmt: skip


async def _populate(p: Plane, kind: Kind, namespace: str, n: int) -> None:
    """n objects that finished before their controller started (status written directly)."""
    api = AsyncApi(p.endpoint)
    status = TASKRUN_DONE if kind.controller == "taskrun" else JOB_DONE
    try:
        await api.call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        base = kind.path.format(ns=namespace)

        async def one(i: int) -> None:
            name = f"done{i:05d}"
            await api.call("POST", base, kind.make(namespace, name, {"runSeconds": 0}))
            extra = {"podName": f"{name}-1"} if kind.controller == "taskrun" else {}
            await api.call(
                "PATCH",
                f"{base}/{name}/status",
                {"status": {**status, **extra}},
                "application/merge-patch+json",
            )

        await gather_limited([one(i) for i in range(n)], limit=32)
    finally:
        await api.close()


def _idle_window(p: Plane, pid: int, users: set[str], seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    settled = _wait_quiet(p, users, quiet=3.0, limit=180.0)
    p.audit.clear()
    sampler = Sampler({"controller": pid})
    time.sleep(seconds)
    usage = sampler.stop()
    records = [r for r in p.records() if r.user in users]
    writes = [r for r in records if r.verb in WRITE_VERBS]
    return {
        "seconds": seconds,
        "settle_seconds": settled - started,
        "cpu_percent": usage["cpu_ms"]["controller"] / 10 / seconds,
        "rss_mb": usage["rss_mb"]["controller"],
        "peak_rss_mb": usage["peak_rss_mb"]["controller"],
        "hwm_mb": usage["hwm_mb"]["controller"],
        "requests_per_minute": len(records) * 60 / seconds,
        "writes_per_minute": len(writes) * 60 / seconds,
        "load": usage["load_after"],
    }


def run_idle(workdir: Path, n: int, seconds: float) -> dict[str, Any]:
    """n finished TaskRuns and n finished Jobs on a fresh control plane."""
    out: dict[str, Any] = {"n": n}
    with running_plane(workdir, "default") as p:
        # Jobs first, with the Job controller off so that none runs a pod; then the
        # controller manager without, and with, the Job controller: the difference is its.
        p.plane.restart_controller_manager(controllers=CONTROLLERS)
        asyncio.run(_populate(p, KINDS["job"], "idle-jobs", n))
        asyncio.run(_populate(p, KINDS["taskrun"], "idle-taskruns", n))
        kcm_users = {JOB_USERS_PREFIX + u for u in ("generic-garbage-collector",)}
        kcm = p.plane.component("kube-controller-manager")
        out["kcm_without_job_controller"] = _idle_window(p, kcm.pid or 0, kcm_users, seconds)
        p.plane.restart_controller_manager(controllers=JOB_CONTROLLERS)
        kcm = p.plane.component("kube-controller-manager")
        users = controller_users("job", p)
        out["job"] = _idle_window(p, kcm.pid or 0, users, seconds)
        with running_controller(p) as proc:
            out["taskrun"] = _idle_window(p, proc.pid, {p.controller_user}, seconds)
    for key in ("kcm_without_job_controller", "job", "taskrun"):
        w = out[key]
        print(
            f"  idle {key:28} RSS {w['rss_mb']:.0f} MB (peak {w['peak_rss_mb']:.0f}), CPU "
            f"{w['cpu_percent']:.2f}%, {w['requests_per_minute']:.1f} requests/min",
            flush=True,
        )
    return out


# -- the whole run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    label: str
    n: int
    rate: float | None
    run_seconds: float


def shapes(args: argparse.Namespace, budget: str) -> list[Shape]:
    out = [Shape(f"burst{n}", n, None, 0.0) for n in args.sizes]
    for n, rate in args.paced:
        out.append(Shape(f"paced{n}@{rate:g}", n, rate, 0.0))
    if args.fixed_n:
        out.append(Shape(f"fixed{args.fixed_n}x{args.fixed_seconds:g}s", args.fixed_n, None,
                         args.fixed_seconds))  # fmt: skip
    only = args.default_shapes if budget == "default" else None
    return [s for s in out if not only or s.label in only]


def machine() -> str:
    from bench.__main__ import machine as describe

    return describe()


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_at_start": list(os.getloadavg()),
        "quick": args.quick,
        "argv": sys.argv[1:],
        "budgets": {k: list(v) for k, v in BUDGETS.items() if k in args.budgets},
        "scheduler_args": list(SCHEDULER_ARGS),
        "node_max_pods": NODE_MAX_PODS,
        "controller_python": controller_python(),
        "runs": [],
        "idle": None,
    }

    def save() -> None:
        # After every run: a run cut short keeps what it measured.
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))

    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:

        def idle() -> None:
            print(f"idle with {args.idle} finished of each", flush=True)
            results["idle"] = run_idle(Path(tmp, "idle"), args.idle, args.idle_seconds)
            save()

        if args.idle and args.idle_first:
            idle()
        for budget in args.budgets:
            print(f"budget {budget}: {' '.join(BUDGETS[budget]) or 'as shipped'}", flush=True)
            with running_plane(Path(tmp, budget), budget) as p:
                for shape in shapes(args, budget):
                    scenario = {"runSeconds": shape.run_seconds, "logs": ""}
                    for kind in args.kinds:
                        label = f"{shape.label}-{budget}".replace("@", "at").replace(".", "")
                        r = run_one(p, kind, label, shape.n, scenario, shape.rate, args.timeout)
                        r["budget"] = budget
                        r["shape"] = shape.label
                        results["runs"].append(r)
                        save()
        if args.idle and not args.idle_first:
            idle()
    results["load_at_end"] = list(os.getloadavg())
    results["finished_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.real", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--sizes", default="1000,5000", help="burst sizes, comma-separated")
    parser.add_argument(
        "--paced",
        default="3000@50",
        help="paced runs as N@RATE (runs offered per second), comma-separated; empty: none",
    )
    parser.add_argument(
        "--default-shapes",
        default="",
        help="at the default budget, only these shapes (e.g. burst1000,paced150@3); default all",
    )
    parser.add_argument("--idle-first", action="store_true", help="the idle phase first")
    parser.add_argument("--fixed-n", type=int, default=1000, help="burst of fixed-length pods")
    parser.add_argument("--fixed-seconds", type=float, default=10.0, help="their length")
    parser.add_argument("--idle", type=int, default=10_000, help="finished objects (0: no idle)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--budgets", default="default,equal", help="of: " + ",".join(BUDGETS))
    parser.add_argument(
        "--kinds",
        default="taskrun,job",
        help="of: "
        + ",".join(KINDS)
        + " (taskrun-keep: onFinishAction keep_pod, as a Job keeps its pod; taskrun-lean: "
        "keep_pod and getLogs false, as a Job reads no log)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run at most")
    parser.add_argument("--out", type=Path, default=None, help="results JSON")
    parser.add_argument("--no-report", action="store_true", help="do not write docs/")
    parser.add_argument("--report-only", action="store_true", help="docs/ from --out only")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.paced, args.fixed_n, args.idle = "100,300", "200@50", 100, 500
        args.fixed_seconds, args.idle_seconds = min(args.fixed_seconds, 3.0), 10.0
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s]
    try:
        args.paced = [
            (int(n), float(rate))
            for n, rate in (spec.split("@") for spec in str(args.paced).split(",") if spec)
        ]
    except ValueError:
        parser.error(f"--paced: expected N@RATE[,N@RATE...], got {args.paced!r}")
    args.default_shapes = {x for x in args.default_shapes.split(",") if x}
    args.budgets = [b for b in args.budgets.split(",") if b]
    args.kinds = [k for k in args.kinds.split(",") if k]
    for b in args.budgets:
        if b not in BUDGETS:
            parser.error(f"--budgets: {b!r} is not one of {', '.join(BUDGETS)}")
    for k in args.kinds:
        if k not in KINDS:
            parser.error(f"--kinds: {k!r} is not one of {', '.join(KINDS)}")
    if args.out is None:
        args.out = RESULTS / ("real-quick.json" if args.quick else "real.json")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        results = json.loads(args.out.read_text())
    else:
        results = run(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, allow_nan=True))
        print(f"results: {args.out}", flush=True)
    if not args.no_report:
        from bench.real_report import write_real_section

        print(f"report: {write_real_section(results)}", flush=True)
    return 0


def finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


if __name__ == "__main__":
    sys.exit(main())
