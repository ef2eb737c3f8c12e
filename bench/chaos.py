"""`python -m bench.chaos`: the controller under faults and SIGKILLs, and what it lost.

python -m bench.chaos --runs 500              # the figures of docs/reliability.md
python -m bench.chaos --runs 50 --chaos-seconds 15 --settle-seconds 30
python -m bench.chaos --fuzz-examples 500     # the bad-input suite, larger than in CI

A burst of TaskRuns with known outcomes (success, exit code, skip, results small and
large) is created against devcluster while the controller, a subprocess, is SIGKILLed
and restarted every few seconds and its own requests are answered with 5xx, 429 with
Retry-After, latency spikes, dropped watches and 410 Gone on resume. The faults are then
lifted and every TaskRun must reach its expected terminal state in a bounded time, with
one pod per attempt and its result byte for byte. tests/chaos/ runs the same harness at
CI size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.cluster import controller_argv
from devcluster.scenario import SCENARIO_ANNOTATION
from taskrun.api import (
    API_VERSION,
    FINISHED_PHASES,
    GROUP,
    KIND,
    LABEL_ATTEMPT,
    PLURAL,
    VERSION,
    XCOM_RESULT_PATH,
    OnFinishAction,
)

ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = ROOT / "crds" / "taskrun.yaml"
# Our own client's user agent: faults are scoped away from it, so the harness always sees
# the truth while the controller does not.
HARNESS_AGENT = "taskrun-chaos-harness/1"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
RETRIES = 30
RETRIED_CODES = frozenset({429, 500, 502, 503, 504})
# Above the sidecar's 4000-byte termination-message limit, so the log hand-over is used.
LARGE_RESULT_BYTES = 6000


# --- what each TaskRun is expected to end as ------------------------------------------------


@dataclass(frozen=True)
class Expected:
    phase: str
    reason: str
    exit_code: int | None
    result: bytes | None = None


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    spec: dict[str, Any]
    expected: Expected


KINDS = ("success", "exit", "skip", "result", "result-large")
# Results are the part most likely to be lost across a restart, so they get the most weight.
KIND_WEIGHTS = (3, 2, 1, 3, 1)


def _result_text(name: str, index: int, large: bool) -> str:
    # Non-ASCII, escapes and key order make "byte for byte" mean something: a re-encoded
    # or re-serialised result would differ.
    doc: dict[str, Any] = {"z": index, "run": name, "text": 'héllo ✓ "q" \\ \u2028', "a": [1.50]}
    if large:
        filler = "".join(chr(0x41 + (index + i) % 26) for i in range(LARGE_RESULT_BYTES))
        doc["blob"] = filler
    return json.dumps(doc, ensure_ascii=False, separators=(", ", ": "))


def make_case(index: int, kind: str, rng: random.Random, prefix: str = "chaos") -> Case:
    name = f"{prefix}-{kind}-{index:05d}"
    # Long enough that pods are often running when the controller is killed.
    scenario: dict[str, Any] = {"runSeconds": round(rng.uniform(0.05, 2.5), 2)}
    spec: dict[str, Any] = {"image": "busybox:1.36", "cmds": ["sh", "-c", f"echo {name}"]}
    result: bytes | None = None
    if kind == "success":
        scenario.update(exitCode=0, logs=f"{name} done\n")
        expected = Expected("Succeeded", "Succeeded", 0)
    elif kind == "exit":
        scenario.update(exitCode=3, logs=f"{name} failing\n")
        expected = Expected("Failed", "ExitCode", 3)
    elif kind == "skip":
        scenario.update(exitCode=42)
        spec["skipOnExitCode"] = [42]
        expected = Expected("Skipped", "Skipped", 42)
    elif kind in ("result", "result-large"):
        text = _result_text(name, index, large=kind == "result-large")
        result = text.encode()
        scenario.update(exitCode=0, files={XCOM_RESULT_PATH: text})
        spec["doXcomPush"] = True
        expected = Expected("Succeeded", "Succeeded", 0, result)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    if index % 5 == 0:
        # Kept pods make a restarted controller re-read finished pods, not only live ones.
        spec["onFinishAction"] = OnFinishAction.KEEP_POD.value
    spec["annotations"] = {SCENARIO_ANNOTATION: json.dumps(scenario, ensure_ascii=False)}
    return Case(name, kind, spec, expected)


def make_cases(n: int, seed: int = 8) -> list[Case]:
    rng = random.Random(seed)
    # Every kind at least once, whatever n, so no check is vacuous at small sizes.
    kinds = list(KINDS[:n]) + rng.choices(KINDS, KIND_WEIGHTS, k=max(0, n - len(KINDS)))
    return [make_case(i, kind, rng) for i, kind in enumerate(kinds)]


def check_outcome(case: Case, obj: dict[str, Any] | None) -> list[str]:
    """What is wrong with the TaskRun `obj` for `case`; empty when it ended as expected."""
    if obj is None:
        return ["TaskRun missing"]
    status = obj.get("status") or {}
    exp = case.expected
    problems = []
    if status.get("phase") != exp.phase or status.get("reason") != exp.reason:
        problems.append(
            f"phase/reason {status.get('phase')}/{status.get('reason')}, expected "
            f"{exp.phase}/{exp.reason} ({status.get('message')!r})"
        )
    if status.get("exitCode") != exp.exit_code:
        problems.append(f"exitCode {status.get('exitCode')!r}, expected {exp.exit_code}")
    return problems


def check_result(case: Case, obj: dict[str, Any] | None) -> str | None:
    """'lost', 'wrong' or None: the result compared byte for byte with the scenario's file."""
    if case.expected.result is None:
        return None
    result = ((obj or {}).get("status") or {}).get("result")
    if result is None:
        return "lost"
    return None if result.encode() == case.expected.result else "wrong"


# --- talking to devcluster ---------------------------------------------------------------------


class Api:
    """The harness's own client: never faulted, so it sees the state of the world."""

    def __init__(self, url: str, *, ssl: Any = None, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.session = aiohttp.ClientSession(
            # ssl and headers: a real API server's CA, client certificate or token.
            connector=aiohttp.TCPConnector(limit=32, ssl=ssl if ssl is not None else True),
            headers={**(headers or {}), "User-Agent": HARNESS_AGENT},
            timeout=aiohttp.ClientTimeout(total=60),
        )
        self.retried = 0

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        for attempt in range(RETRIES):
            async with self.session.request(
                method,
                self.url + path,
                data=data,
                params=params,
                headers={"Content-Type": content_type},
            ) as resp:
                text = await resp.text()
                status = resp.status
                wait = float(resp.headers.get("Retry-After", "0.1"))
            if status in RETRIED_CODES and attempt + 1 < RETRIES:
                # Only when faults could not be scoped away from the harness.
                self.retried += 1
                await asyncio.sleep(min(wait, 1.0))
                continue
            try:
                return status, json.loads(text) if text else None
            except json.JSONDecodeError:
                return status, text
        raise AssertionError("unreachable")

    async def ensure(self, method: str, path: str, body: Any = None, ok: tuple = (200,)) -> Any:
        status, answer = await self.call(method, path, body)
        if status not in ok:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    async def install_crd(self, timeout: float = 20) -> None:
        crd = yaml.safe_load(CRD_PATH.read_text())
        await self.ensure(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd,
            ok=(201, 409),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, doc = await self.call("GET", f"/apis/{GROUP}/{VERSION}")
            if status == 200 and any(r.get("name") == PLURAL for r in doc.get("resources", [])):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{PLURAL}.{GROUP} not served {timeout} s after creating the CRD")

    async def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.ensure("POST", "/api/v1/namespaces", body, ok=(201, 409))

    def taskruns_path(self, namespace: str, name: str = "") -> str:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        return f"{path}/{name}" if name else path

    async def create_taskrun(
        self, namespace: str, name: str, spec: Any, metadata: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace, **(metadata or {})},
            "spec": spec,
        }
        retried = self.retried
        status, answer = await self.call("POST", self.taskruns_path(namespace), body)
        if status == 409 and self.retried > retried:
            # An earlier try was answered 5xx after it was stored: it is ours.
            return 201, await self.get_taskrun(namespace, name)
        return status, answer

    async def get_taskrun(self, namespace: str, name: str) -> dict[str, Any] | None:
        status, obj = await self.call("GET", self.taskruns_path(namespace, name))
        return obj if status == 200 else None

    async def list_taskruns(self, namespace: str) -> dict[str, dict[str, Any]]:
        doc = await self.ensure("GET", self.taskruns_path(namespace))
        return {item["metadata"]["name"]: item for item in doc.get("items", [])}


class PodObserver:
    """Every pod uid ever seen per (TaskRun uid, attempt), from an unfaulted watch."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.pods: dict[tuple[str, str], set[str]] = {}
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            # An observer that died makes the duplicate figure meaningless: let it raise.
            with suppress(asyncio.CancelledError):
                await self.task

    def _record(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
        if not owners:
            return
        key = (owners[0].get("uid", ""), (meta.get("labels") or {}).get(LABEL_ATTEMPT, "?"))
        self.pods.setdefault(key, set()).add(meta.get("uid", ""))

    async def _run(self) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        rv = ""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            if not rv:
                # A list first, so pods created while the watch was down are not missed.
                doc = await self.api.ensure("GET", path)
                for pod in doc.get("items", []):
                    self._record(pod)
                rv = doc.get("metadata", {}).get("resourceVersion", "")
            params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true"}
            async with self.api.session.get(
                self.api.url + path, params=params, timeout=timeout
            ) as resp:
                if resp.status != 200:
                    if resp.status == 410:
                        rv = ""
                    await asyncio.sleep(0.1)
                    continue
                async for line in resp.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        rv = ""  # 410 Gone: relist
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self._record(obj)

    def duplicates(self) -> dict[tuple[str, str], int]:
        return {key: len(uids) for key, uids in self.pods.items() if len(uids) > 1}


# --- the controller as a subprocess ------------------------------------------------------------


@dataclass
class Incarnation:
    pid: int
    log: Path
    started: float
    killed_by_us: bool = False
    returncode: int | None = None


class ControllerProcess:
    """`python -m controller`, restartable, every incarnation's stderr kept apart."""

    def __init__(self, kubeconfig: str, logdir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.logdir = logdir
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.incarnations: list[Incarnation] = []

    def start(self) -> Incarnation:
        if self.alive():
            raise RuntimeError("the controller is already running")
        log = self.logdir / f"controller-{len(self.incarnations):03d}.log"
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1"}
        cmd = controller_argv(*self.extra_args, python=sys.executable)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        inc = Incarnation(self.proc.pid, log, time.monotonic())
        self.incarnations.append(inc)
        return inc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reap(self) -> Incarnation | None:
        """Record the exit of the current incarnation if it ended on its own."""
        if self.proc is None or self.proc.poll() is None:
            return None
        inc = self.incarnations[-1]
        inc.returncode = self.proc.returncode
        self.proc = None
        return inc

    def kill(self) -> None:
        if self.proc is None:
            return
        inc = self.incarnations[-1]
        if self.proc.poll() is None:
            inc.killed_by_us = True
            self.proc.send_signal(signal.SIGKILL)
        inc.returncode = self.proc.wait()
        self.proc = None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, as a Deployment rollout does; a clean exit is expected."""
        if self.proc is None:
            return
        inc = self.incarnations[-1]
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                inc.killed_by_us = True
                self.proc.kill()
                self.proc.wait()
        inc.returncode = self.proc.returncode
        self.proc = None

    def unexpected_exits(self) -> list[Incarnation]:
        # -SIGKILL from us, 0 after our SIGTERM (or -SIGTERM if Python did not catch it).
        expected = {0, -signal.SIGTERM}
        return [
            inc
            for inc in self.incarnations
            if inc.returncode is not None
            and not inc.killed_by_us
            and inc.returncode not in expected
        ]


_TRACEBACK = "Traceback (most recent call last)"
# kopf logs a handler's exception with its traceback and retries it (kopf 1.45:
# "... failed with an exception and will try again in N seconds"), and throttles an error
# that escaped event processing before trying again: error handling at work, not a crash.
# A handler given up ("will stop now"), a dead background task or an exception nobody
# retrieved is what this scan calls unhandled.
_RETRIED = re.compile(
    r"will try again|[Ww]ill retry|failed temporarily|Throttling for .* unexpected error"
)
_UNHANDLED_LINES = ("exception was never retrieved", "unrecoverable error", "Exception in callback")


@dataclass
class LogScan:
    tracebacks: int = 0
    retried_tracebacks: int = 0
    unhandled: list[str] = field(default_factory=list)


def scan_logs(paths: list[Path]) -> LogScan:
    scan = LogScan()
    for path in paths:
        lines = path.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            is_traceback = _TRACEBACK in line
            if not is_traceback and not any(m in line for m in _UNHANDLED_LINES):
                continue
            if is_traceback:
                scan.tracebacks += 1
                # The log record that owns this traceback: the lines just above it, up to
                # the previous traceback (an exception message may span lines).
                above = []
                for prev in reversed(lines[max(0, i - 6) : i]):
                    if _TRACEBACK in prev:
                        break
                    above.append(prev)
                if any(_RETRIED.search(prev) for prev in above):
                    scan.retried_tracebacks += 1
                    continue
            tail = next(
                (t for t in lines[i + 1 : i + 200] if t and not t.startswith((" ", "\t"))),
                line,
            )
            scan.unhandled.append(f"{path.name}:{i + 1}: {line[:200]} / {tail[:300]}")
    return scan


# --- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultConfig:
    error_rate: float = 0.10
    error_codes: tuple[int, ...] = (500, 502, 503, 504)
    throttle_rate: float = 0.05
    retry_after: int = 1
    jitter: float = 0.05
    # Latency spikes: every spike_every seconds, spike_latency on every request for a while.
    spike_every: tuple[float, float] = (3.0, 7.0)
    spike_seconds: float = 1.0
    spike_latency: float = 1.5
    # Windows in which every watch resuming from a resourceVersion is answered 410 Gone.
    # Always on, kopf's list-then-watch would never get a watch through: windows leave
    # room for watches that deliver events and are then dropped mid-stream.
    gone_every: tuple[float, float] = (2.0, 5.0)
    gone_seconds: float = 2.0
    drop_watches_every: float = 3.0


def common_prefix(agents: set[str]) -> str:
    """The longest prefix all of `agents` share; empty if it would also match the harness."""
    prefix = ""
    if agents:
        first, last = min(agents), max(agents)
        size = next(
            (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first)
        )
        prefix = first[:size]
    return "" if HARNESS_AGENT.startswith(prefix) else prefix


def enable_faults(cluster: Any, agents: set[str], cfg: FaultConfig) -> None:
    """Turn the faults on for the controller's requests, never for the harness's."""
    plan = cluster.faults
    if plan is None:  # a real API server: SIGKILLs only
        return
    disable_faults(cluster)
    plan.error_codes = cfg.error_codes
    plan.retry_after = cfg.retry_after
    plan.jitter = cfg.jitter
    plan.drop_watches_every = cfg.drop_watches_every
    plan.user_agent_prefix = common_prefix(agents) or None
    # FaultPlan scopes by one user-agent prefix; the controller has two (kopf's and its own
    # client's) with nothing in common. Faulting the harness too would blind it: its pod
    # watch, relisting after a 410, misses pods created and deleted in the gap. So this
    # instance is told to spare the harness; disable_faults() undoes it.
    scoped = type(plan).applies

    def applies(**request: Any) -> bool:
        if str(request.get("user_agent", "")).startswith(HARNESS_AGENT):
            return False
        return bool(scoped(plan, **request))

    plan.applies = applies
    plan.throttle_rate = cfg.throttle_rate
    plan.error_rate = cfg.error_rate


def disable_faults(cluster: Any) -> None:
    plan = cluster.faults
    if plan is None:
        return
    plan.__dict__.pop("applies", None)
    plan.clear()


async def pulses(
    cluster: Any,
    until: float,
    rng: random.Random,
    every: tuple[float, float],
    seconds: float,
    **on: Any,
) -> list[tuple[float, float]]:
    """Set the FaultPlan fields `on` for `seconds` every `every` seconds until `until`.

    Returns the (start, end) wall-clock windows, to attribute requests to them.
    """
    plan = cluster.faults
    windows: list[tuple[float, float]] = []
    if plan is None:
        return windows
    off = {name: getattr(plan, name) for name in on}
    while time.monotonic() < until:
        await asyncio.sleep(min(rng.uniform(*every), max(0.0, until - time.monotonic())))
        if time.monotonic() >= until:
            break
        start = time.time()
        for name, value in on.items():
            setattr(plan, name, value)
        await asyncio.sleep(seconds)
        for name, value in off.items():
            setattr(plan, name, value)
        windows.append((start, time.time()))
    return windows


def controller_agents(records: list[Any]) -> set[str]:
    return {r.user_agent for r in records if r.user_agent and r.user_agent != HARNESS_AGENT}


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosConfig:
    runs: int = 50
    chaos_seconds: float = 20.0
    settle_seconds: float = 60.0
    kill_every: tuple[float, float] = (2.0, 5.0)
    # TaskRuns/s offered; None spreads the burst over 90 % of the chaos phase, so TaskRuns
    # are still in flight when the faults stop.
    create_rate: float | None = None
    namespace: str = "chaos"
    seed: int = 8
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass
class ChaosFigures:
    runs: int = 0
    created: int = 0
    kills: int = 0
    latency_spikes: int = 0
    controller_requests: int = 0
    chaos_requests: int = 0
    chaos_watches: int = 0
    watch_resumes_gone: int = 0
    harness_retries: int = 0
    faults_injected: int = 0
    faults_by_code: dict[str, int] = field(default_factory=dict)
    terminal_when_faults_stopped: int = 0
    settle_seconds: float = 0.0
    not_terminal: int = 0
    wrong_outcome: int = 0
    results_expected: int = 0
    results_lost: int = 0
    results_wrong: int = 0
    pods_created: int = 0
    pod_create_conflicts: int = 0
    duplicate_pods: int = 0
    duplicate_pods_watch: int = 0
    runs_without_pod: int = 0
    pod_creates_after_quiet_restart: int = 0
    writes_after_quiet_restart: int = 0
    unexpected_exits: int = 0
    tracebacks: int = 0
    retried_tracebacks: int = 0
    unhandled_errors: int = 0
    wall_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def _is_pod_create(r: Any, namespace: str) -> bool:
    return (
        r.verb == "create"
        and r.resource == "pods"
        and not r.subresource
        and r.namespace == namespace
        and r.user_agent != HARNESS_AGENT
    )


def pods_created(records: list[Any], namespace: str) -> int:
    """Pod creates answered 201: each one is a pod that really came to exist."""
    return sum(1 for r in records if _is_pod_create(r, namespace) and r.code == 201)


async def wait_for_watch(cluster: Any, since: int, timeout: float, ctl: ControllerProcess) -> None:
    """kopf's ready flag fires before its watches open: wait for the taskruns watch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not ctl.alive():
            raise RuntimeError(f"the controller exited at start-up, see {ctl.incarnations[-1].log}")
        if any(
            r.verb == "watch" and r.resource == PLURAL and r.code == 200
            for r in cluster.requests.records[since:]
        ):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the controller opened no watch on {PLURAL} within {timeout} s")


async def _wait_quiet(
    cluster: Any, since: int, agents: set[str], quiet: float, timeout: float
) -> None:
    """Until the controller has made no request for `quiet` seconds (watches aside)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = max(
            (
                r.started + r.duration
                for r in cluster.requests.records[since:]
                if r.user_agent in agents and r.verb != "watch"
            ),
            default=0.0,
        )
        if time.time() - last >= quiet:
            return
        await asyncio.sleep(0.2)


async def warm_up(api: Api, namespace: str, timeout: float = 60) -> None:
    """One TaskRun with a result, end to end, no faults: the pieces work together."""
    await api.create_namespace(namespace)
    case = make_case(0, "result", random.Random(0), prefix="warmup")
    status, answer = await api.create_taskrun(namespace, case.name, case.spec)
    if status != 201:
        raise RuntimeError(f"warm-up TaskRun refused: {status} {answer}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = await api.get_taskrun(namespace, case.name)
        if ((obj or {}).get("status") or {}).get("phase") in FINISHED_PHASES:
            problems = check_outcome(case, obj)
            verdict = check_result(case, obj)
            if verdict:
                problems.append(f"result {verdict}")
            if problems:
                raise RuntimeError(f"warm-up TaskRun without faults: {problems}")
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"warm-up TaskRun not terminal {timeout} s after creation, no faults on")


async def _monkey(
    cluster: Any,
    ctl: ControllerProcess,
    cfg: ChaosConfig,
    until: float,
    rng: random.Random,
    figures: ChaosFigures,
) -> None:
    """SIGKILL the controller a few seconds into each life, then start it again at once.

    A life counts from the controller's taskruns watch, not from exec: start-up (imports)
    takes seconds on a loaded 2-core machine and a kill then tests little. One life in
    five is killed during start-up anyway, while it lists and resumes.
    """
    since = 0  # the first life is already watching
    while True:
        early = rng.random() < 0.2
        if not early:
            try:
                await wait_for_watch(cluster, since, max(0.1, until - time.monotonic()), ctl)
            except TimeoutError:
                break
            except RuntimeError:
                pass  # it exited during start-up: reaped and counted below
        pause = rng.uniform(0.3, 2.5) if early else rng.uniform(*cfg.kill_every)
        await asyncio.sleep(min(pause, max(0.0, until - time.monotonic())))
        if time.monotonic() >= until:
            break
        if ctl.reap() is not None:
            figures.problems.append(f"controller exited on its own: {ctl.incarnations[-1]}")
        else:
            ctl.kill()
            figures.kills += 1
        since = len(cluster.requests)
        ctl.start()


async def run_chaos(cluster: Any, cfg: ChaosConfig, logdir: Path) -> ChaosFigures:
    """Run the burst against a started DevCluster; figures, never an exception for a finding."""
    figures = ChaosFigures(runs=cfg.runs)
    rng = random.Random(cfg.seed)
    cases = make_cases(cfg.runs, cfg.seed)
    t0 = time.monotonic()
    api = Api(
        cluster.url,
        ssl=getattr(cluster, "ssl_context", None),
        headers=getattr(cluster, "headers", None),
    )
    kubeconfig = str(logdir / "kubeconfig")
    cluster.write_kubeconfig(kubeconfig)
    ctl = ControllerProcess(kubeconfig, logdir)
    observer = PodObserver(api, cfg.namespace)
    try:
        await api.install_crd()
        await api.create_namespace(cfg.namespace)
        since = len(cluster.requests)
        ctl.start()
        await wait_for_watch(cluster, since, 60, ctl)
        # One TaskRun end to end before any fault: proves the pieces work together, and
        # shows every user agent the controller uses, so the faults can be scoped to them.
        await warm_up(api, cfg.namespace + "-warmup")
        agents = controller_agents(cluster.requests.records[since:])
        observer.start()
        log_start = len(cluster.requests)

        enable_faults(cluster, agents, cfg.faults)
        burst_start = time.monotonic()
        window = [time.time(), 0.0]
        chaos_end = burst_start + cfg.chaos_seconds
        monkey = asyncio.create_task(_monkey(cluster, ctl, cfg, chaos_end, rng, figures))
        f = cfg.faults
        spikes = asyncio.create_task(
            pulses(cluster, chaos_end, rng, f.spike_every, f.spike_seconds, latency=f.spike_latency)
        )
        gone = asyncio.create_task(
            pulses(cluster, chaos_end, rng, f.gone_every, f.gone_seconds, force_410_on_resume=True)
        )
        rate = cfg.create_rate or cfg.runs / (0.9 * cfg.chaos_seconds)
        for i, case in enumerate(cases):
            # Paced, so the burst overlaps several kills instead of landing before the first.
            await asyncio.sleep(max(0.0, burst_start + i / rate - time.monotonic()))
            status, answer = await api.create_taskrun(cfg.namespace, case.name, case.spec)
            if status == 201:
                figures.created += 1
            else:
                figures.problems.append(f"create {case.name}: {status} {answer}")
        await monkey
        figures.latency_spikes = len(await spikes)
        gone_windows = await gone
        disable_faults(cluster)
        window[1] = time.time()
        faults_stopped = time.monotonic()
        if not ctl.alive():
            if ctl.reap() is not None:
                figures.problems.append(f"controller exited on its own: {ctl.incarnations[-1]}")
            ctl.start()

        runs = await api.list_taskruns(cfg.namespace)
        figures.terminal_when_faults_stopped = sum(
            (o.get("status") or {}).get("phase") in FINISHED_PHASES for o in runs.values()
        )
        while time.monotonic() - faults_stopped < cfg.settle_seconds:
            runs = await api.list_taskruns(cfg.namespace)
            pending = [
                c
                for c in cases
                if (runs.get(c.name, {}).get("status") or {}).get("phase") not in FINISHED_PHASES
            ]
            if not pending:
                break
            await asyncio.sleep(0.25)
        figures.settle_seconds = time.monotonic() - faults_stopped

        # One more restart on a settled cluster: it must not start anything again.
        quiet_start = len(cluster.requests)
        ctl.kill()
        figures.kills += 1
        since = len(cluster.requests)
        ctl.start()
        await wait_for_watch(cluster, since, 60, ctl)
        await _wait_quiet(cluster, since, agents, quiet=2.0, timeout=60)
        after = [r for r in cluster.requests.records[quiet_start:] if r.user_agent in agents]
        figures.pod_creates_after_quiet_restart = sum(
            _is_pod_create(r, cfg.namespace) for r in after
        )
        writes = [r for r in after if r.verb in WRITE_VERBS and r.namespace == cfg.namespace]
        figures.writes_after_quiet_restart = len(writes)
        figures.problems += [
            f"note: write after the settled restart: {r.verb} {r.resource}/{r.subresource}"
            f" {r.name} -> {r.code} ({r.user_agent})"
            for r in writes
        ]
        runs = await api.list_taskruns(cfg.namespace)
    finally:
        disable_faults(cluster)
        ctl.stop()
        await observer.stop()
        await api.close()

    records = cluster.requests.records[log_start:]
    _tally(figures, cases, runs, records, observer, cfg.namespace, agents)
    figures.chaos_requests = sum(
        1 for r in records if r.user_agent in agents and window[0] <= r.started <= window[1]
    )
    figures.harness_retries = api.retried
    watches = [
        r
        for r in records
        if r.user_agent in agents and r.verb == "watch" and window[0] <= r.started <= window[1]
    ]
    figures.chaos_watches = len(watches)
    # Every resume from a resourceVersion inside a "gone" window is answered 410.
    figures.watch_resumes_gone = sum(
        1
        for r in watches
        if _resumes(r.query) and any(a <= r.started <= b for a, b in gone_windows)
    )
    figures.unexpected_exits = len(ctl.unexpected_exits())
    for inc in ctl.unexpected_exits():
        figures.problems.append(f"unexpected exit {inc.returncode}, log {inc.log}")
    scan = scan_logs([inc.log for inc in ctl.incarnations])
    figures.tracebacks = scan.tracebacks
    figures.retried_tracebacks = scan.retried_tracebacks
    figures.unhandled_errors = len(scan.unhandled)
    figures.problems += scan.unhandled[:20]
    figures.wall_seconds = time.monotonic() - t0
    return figures


def _resumes(query: str) -> bool:
    rv = urllib.parse.parse_qs(query).get("resourceVersion", [""])[0]
    return rv not in ("", "0")


def _tally(
    figures: ChaosFigures,
    cases: list[Case],
    runs: dict[str, dict[str, Any]],
    records: list[Any],
    observer: PodObserver,
    namespace: str,
    agents: set[str],
) -> None:
    ours = [r for r in records if r.user_agent in agents]
    figures.controller_requests = len(ours)
    faults = Counter(str(r.code) for r in ours if r.code in (429, 500, 502, 503, 504))
    figures.faults_by_code = dict(sorted(faults.items()))
    figures.faults_injected = sum(faults.values())
    for case in cases:
        obj = runs.get(case.name)
        phase = ((obj or {}).get("status") or {}).get("phase")
        if phase not in FINISHED_PHASES:
            figures.not_terminal += 1
            figures.problems.append(f"{case.name}: not terminal ({phase})")
            continue
        wrong = check_outcome(case, obj)
        if wrong:
            figures.wrong_outcome += 1
            figures.problems.append(f"{case.name}: {'; '.join(wrong)}")
        if case.expected.result is not None:
            figures.results_expected += 1
            verdict = check_result(case, obj)
            if verdict == "lost":
                figures.results_lost += 1
            elif verdict == "wrong":
                figures.results_wrong += 1
            if verdict:
                figures.problems.append(f"{case.name}: result {verdict}")
    # A create's URL has no name (it is in the body), so the log gives the number of pods
    # that came to exist; the watch gives the attempts they belong to. Every pod beyond one
    # per (TaskRun, attempt) is a duplicate.
    figures.pods_created = pods_created(records, namespace)
    figures.pod_create_conflicts = sum(
        1 for r in records if _is_pod_create(r, namespace) and r.code == 409
    )
    figures.duplicate_pods = figures.pods_created - len(observer.pods)
    watch_dups = observer.duplicates()
    figures.duplicate_pods_watch = sum(n - 1 for n in watch_dups.values())
    figures.problems += [
        f"TaskRun uid {uid} attempt {attempt}: {n} pods" for (uid, attempt), n in watch_dups.items()
    ]
    owners = {owner for owner, _attempt in observer.pods}
    figures.runs_without_pod = sum(
        1 for obj in runs.values() if obj.get("metadata", {}).get("uid") not in owners
    )


# --- figures -----------------------------------------------------------------------------------

ASSERTED_ZERO = (
    "not_terminal",
    "wrong_outcome",
    "results_lost",
    "results_wrong",
    "duplicate_pods",
    "duplicate_pods_watch",
    "runs_without_pod",
    "pod_creates_after_quiet_restart",
    "unexpected_exits",
    "unhandled_errors",
)


def figures_table(figures: ChaosFigures, cfg: ChaosConfig) -> str:
    rows = [
        ("TaskRuns created / planned", f"{figures.created} / {figures.runs}"),
        ("chaos phase (s)", f"{cfg.chaos_seconds:g}"),
        ("controller SIGKILLs", str(figures.kills)),
        ("latency spikes", f"{figures.latency_spikes} x {cfg.faults.spike_latency:g} s"),
        (
            "controller requests (during the chaos phase)",
            (f"{figures.controller_requests} ({figures.chaos_requests})"),
        ),
        (
            "faults answered (by code)",
            f"{figures.faults_injected} {json.dumps(figures.faults_by_code)}",
        ),
        (
            "watches opened under faults (resumes answered 410)",
            (f"{figures.chaos_watches} ({figures.watch_resumes_gone})"),
        ),
        ("terminal when faults stopped", str(figures.terminal_when_faults_stopped)),
        ("seconds to all terminal after faults stop", f"{figures.settle_seconds:.1f}"),
        (f"not terminal {cfg.settle_seconds:g} s after faults stop", str(figures.not_terminal)),
        ("wrong phase / reason / exit code", str(figures.wrong_outcome)),
        (f"results lost (of {figures.results_expected})", str(figures.results_lost)),
        ("results wrong (byte for byte)", str(figures.results_wrong)),
        ("pods created (request log: pod creates answered 201)", str(figures.pods_created)),
        ("pod creates answered 409 (the pod existed: adopted)", str(figures.pod_create_conflicts)),
        ("duplicate pods (201 creates - distinct TaskRun+attempt)", str(figures.duplicate_pods)),
        ("duplicate pods (watch: uids per TaskRun+attempt > 1)", str(figures.duplicate_pods_watch)),
        ("TaskRuns that never had a pod", str(figures.runs_without_pod)),
        ("pod creates after a restart once settled", str(figures.pod_creates_after_quiet_restart)),
        ("API writes after a restart once settled (cost)", str(figures.writes_after_quiet_restart)),
        ("controller exits not caused by us", str(figures.unexpected_exits)),
        ("unhandled errors in controller output", str(figures.unhandled_errors)),
        (
            "tracebacks logged (of which retried handler errors)",
            (f"{figures.tracebacks} ({figures.retried_tracebacks})"),
        ),
        ("harness requests retried (must be 0: faults spare it)", str(figures.harness_retries)),
        ("wall time (s)", f"{figures.wall_seconds:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


@contextmanager
def started_cluster() -> Iterator[Any]:
    from devcluster import DevCluster

    cluster = DevCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def run_fuzz(examples: int) -> int:
    """tests/chaos/test_fuzz.py with `examples` spread over its four strategies."""
    with tempfile.TemporaryDirectory(prefix="taskrun-fuzz-") as tmp:
        report = Path(tmp, "summary.txt")
        env = {
            **os.environ,
            "TASKRUN_FUZZ_EXAMPLES": str(examples),
            "TASKRUN_FUZZ_REPORT": str(report),
        }
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "0"]
        cmd.append(str(ROOT / "tests" / "chaos" / "test_fuzz.py"))
        started = time.monotonic()
        code = subprocess.call(cmd, env=env, cwd=ROOT)
        print(f"fuzz: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores")
        print(f"{examples} examples requested, {time.monotonic() - started:.0f} s, exit {code}")
        if report.exists():
            print(report.read_text())
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--chaos-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--kill-every", default="1,3", help="min,max seconds of each life after its watch opens"
    )
    parser.add_argument(
        "--create-rate", type=float, help="TaskRuns/s offered (default: over 90%% of the chaos)"
    )
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--fuzz-examples", type=int, default=0, help="run tests/chaos/test_fuzz.py with N examples"
    )
    args = parser.parse_args(argv)
    if args.fuzz_examples:
        return run_fuzz(args.fuzz_examples)
    lo, hi = (float(x) for x in args.kill_every.split(","))
    cfg = ChaosConfig(
        runs=args.runs,
        chaos_seconds=args.chaos_seconds,
        settle_seconds=args.settle_seconds,
        kill_every=(lo, hi),
        create_rate=args.create_rate,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="taskrun-chaos-") as tmp, started_cluster() as cluster:
        figures = asyncio.run(run_chaos(cluster, cfg, Path(tmp)))
        print(
            f"chaos: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores"
        )
        print(figures_table(figures, cfg))
        for problem in figures.problems[:50]:
            print("  problem:", problem)
        if args.json:
            Path(args.json).write_text(json.dumps({"config": asdict(cfg), **asdict(figures)}))
    bad = [name for name in ASSERTED_ZERO if getattr(figures, name)]
    if bad or figures.created != figures.runs:
        print("FAILED:", ", ".join(bad) or "not every TaskRun was created")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
