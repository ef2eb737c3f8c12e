"""A burst of zero-length TaskRuns on the real control plane, optionally under py-spy.

For profiling the controller where devcluster's own CPU is not in the way: the API server
is kube-apiserver (``python -m realcluster up --kubeconfig F``), pods run on the node
agent, and the controller runs as its own process from a source tree of choice, so the
tree before a change and after it are measured back to back on the same cluster::

    python -m bench.profile_real --kubeconfig F --n 300 [--src DIR] [--pyspy OUT] [--audit LOG]
    python -m bench.profile_real --summarize OUT.txt   # py-spy's raw stacks as a table

One JSON line per run on stdout: throughput, controller CPU ms and peak RSS, pod terminal
-> TaskRun terminal latency (one observer's watches, as bench/burst.py), and, with
``--audit`` (realcluster's audit log), the controller's requests and writes per run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.burst import WRITE_VERBS, ZERO_POD, Observed, _observe, percentiles
from bench.cluster import ROOT, Api, gather_limited
from bench.procstat import sample
from taskrun.api import FINISHED_PHASES


def _ssl_context(kubeconfig: dict[str, Any], tmp: Path) -> tuple[str, ssl.SSLContext]:
    cluster = kubeconfig["clusters"][0]["cluster"]
    user = kubeconfig["users"][0]["user"]
    files = {}
    for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
        path = tmp / key
        path.write_bytes(base64.b64decode(cluster.get(key) or user[key]))
        files[key] = str(path)
    ctx = ssl.create_default_context(cafile=files["certificate-authority-data"])
    ctx.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
    return str(cluster["server"]), ctx


class RealApi(Api):
    """bench.cluster.Api over TLS with the kubeconfig's client certificate."""

    def __init__(self, url: str, ctx: ssl.SSLContext) -> None:
        self.url = url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, ssl=ctx), headers={"User-Agent": "bench"}
        )

    async def ensure_crd(self) -> None:
        crd = yaml.safe_load((ROOT / "crds" / "taskrun.yaml").read_text())
        base = f"{self.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        async with self.session.post(base, json=crd) as resp:
            if resp.status not in (201, 409):
                raise RuntimeError(await resp.text())
        for _ in range(200):
            async with self.session.get(f"{base}/{crd['metadata']['name']}") as resp:
                conditions = ((await resp.json()).get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("CRD not established in 10 s")

    async def wait_finished(self, namespace: str, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.session.get(self._path(namespace, name)) as resp:
                body = await resp.json() if resp.status == 200 else {}
            if (body.get("status") or {}).get("phase") in FINISHED_PHASES:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{namespace}/{name} not finished in {timeout} s")


def _audit_records(path: Path, offset: int) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        fh.seek(offset)
        lines = fh.read().split(b"\n")
    seen: set[str] = set()
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if event["auditID"] in seen:
            continue
        seen.add(event["auditID"])
        out.append(event)
    return out


def _start_controller(args: argparse.Namespace, namespace: str, tmp: Path) -> subprocess.Popen:
    src = Path(args.src).resolve()
    env = {**os.environ, "KUBECONFIG": args.kubeconfig, "PYTHONPATH": str(src)}
    with (tmp / "controller.log").open("wb") as log:
        return subprocess.Popen(
            [args.python, "-m", "controller", "--namespace", namespace, *args.controller_arg],
            cwd=src,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _start_spy(args: argparse.Namespace, pid: int) -> subprocess.Popen:
    fmt = "raw" if args.pyspy.endswith(".txt") else "speedscope"
    spy = str(Path(sys.executable).with_name("py-spy"))
    rate, pid_ = str(args.rate), str(pid)
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            pid_,
            "--rate",
            rate,
            "--format",
            fmt,
            "-o",
            args.pyspy,
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def run(args: argparse.Namespace, url: str, ctx: ssl.SSLContext, tmp: Path) -> dict[str, Any]:
    api = RealApi(url, ctx)
    namespace = f"prof-{uuid.uuid4().hex[:6]}"
    await api.ensure_crd()
    await api.create_namespace(namespace)
    proc = _start_controller(args, namespace, tmp)
    spy = None
    try:
        spec: dict[str, Any] = {
            "image": "busybox",
            "annotations": {"devcluster.taskrun.dev/scenario": json.dumps(ZERO_POD)},
        }
        # The warm-up run proves the watches are open and the client logged in.
        await api.create_taskrun(namespace, "warmup", spec)
        await api.wait_finished(namespace, "warmup", 60)
        await asyncio.sleep(1)
        obs = Observed()
        stop = asyncio.Event()
        observer = asyncio.create_task(_observe(api, obs, stop, args.n + 1))
        obs.run_terminal["warmup"] = 0.0
        await asyncio.sleep(0.3)
        audit = Path(args.audit) if args.audit else None
        audit_offset = audit.stat().st_size if audit else 0
        if args.pyspy:
            spy = _start_spy(args, proc.pid)
            await asyncio.sleep(1)
        before = sample(proc.pid)
        started = time.monotonic()

        async def create(i: int) -> None:
            if args.pace:
                delay = started + i / args.pace - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            name = f"b{i:05d}"
            obs.created[name] = time.monotonic()
            await api.create_taskrun(namespace, name, spec)

        await gather_limited([create(i) for i in range(args.n)], limit=32)
        try:
            await asyncio.wait_for(stop.wait(), args.timeout)
        except TimeoutError:
            stop.set()
        await observer
        del obs.run_terminal["warmup"]
        elapsed = max(obs.run_terminal.values(), default=time.monotonic()) - started
        after = sample(proc.pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        pod_to_run = [
            (obs.run_terminal[k] - obs.pod_terminal[k]) * 1000
            for k in obs.run_terminal
            if k in obs.pod_terminal
        ]
        result: dict[str, Any] = {
            "src": args.src,
            "n": args.n,
            "pace": args.pace,
            "finished": len(obs.run_terminal),
            "seconds": round(elapsed, 2),
            "throughput": round(len(obs.run_terminal) / elapsed, 1) if elapsed > 0 else 0,
            "cpu_ms_per_run": round((after.cpu_seconds - before.cpu_seconds) * 1000 / args.n, 2),
            "peak_rss_mb": round(after.peak_rss_bytes / 2**20, 1),
            "pod_to_run_ms": {k: round(v, 1) for k, v in percentiles(pod_to_run).items()},
        }
        if audit is not None:
            await asyncio.sleep(1)  # the audit log is written as handlers return
            mine = [
                e
                for e in _audit_records(audit, audit_offset)
                if (e.get("objectRef") or {}).get("namespace") == namespace
                and not str(e.get("userAgent", "")).startswith("bench")
                and str(e.get("userAgent", "")).split("/")[0] in ("kopf", "taskrun-controller")
            ]
            writes: dict[str, float] = {}
            for e in mine:
                if e["verb"] in WRITE_VERBS:
                    ref = e["objectRef"]
                    key = f"{e['verb']} {ref.get('resource')}" + (
                        f"/{ref['subresource']}" if ref.get("subresource") else ""
                    )
                    writes[key] = writes.get(key, 0) + 1
            result["requests_per_run"] = round(len(mine) / args.n, 2)
            result["writes_per_run"] = {k: round(v / args.n, 2) for k, v in sorted(writes.items())}
            result["user_agents"] = sorted({str(e.get("userAgent")) for e in mine})
        return result
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        async with api.session.delete(f"{api.url}/api/v1/namespaces/{namespace}") as resp:
            await resp.read()
        await api.close()


# Where a sample's CPU goes, by the first of these frames (function names) on its stack.
BUCKETS = [
    ("kopf: per-event processing (Body, Patch, causes, handler call)", "process_resource_event"),
    ("kopf: per-object worker tasks", "worker"),
    ("controller: cache and queue each event (eventpath)", "Route.deliver"),
    ("watch streams: read and parse (JSON) the events", "infinite_watch"),
    ("reconcile: API requests (aiohttp, TLS, JSON)", "Client.request"),
    ("reconcile: decide (controller.core)", "decide"),
    ("reconcile: the rest", "Controller.reconcile"),
]


def summarize(path: str, top: int = 15) -> str:
    """py-spy's collapsed stacks (``--format raw``) as a table: buckets and the top
    functions by own samples, in percent of the busy samples (idle in epoll left out)."""
    buckets: dict[str, int] = {}
    own: dict[str, int] = {}
    busy = idle = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [f.partition(" (")[0] for f in stack.split(";")]
        if frames[-1] in ("EpollSelector.select", "_PollLikeSelector.select"):
            idle += n
            continue
        busy += n
        leaf = stack.split(";")[-1]
        name, _, where = leaf.partition(" (")
        where = where.rstrip(")").rsplit(":", 1)[0].split("site-packages/")[-1]
        key = f"{name} ({where.split('python3.11/')[-1]})"
        own[key] = own.get(key, 0) + n
        bucket = next((b for b, frame in BUCKETS if frame in frames), "event loop and the rest")
        buckets[bucket] = buckets.get(bucket, 0) + n
    lines = [f"{busy} busy samples ({idle} idle in epoll left out)", "", "where | % of busy"]
    lines += ["---|---"]
    ordered = sorted(buckets.items(), key=lambda i: -i[1])
    lines += [f"{b} | {100 * n / busy:.1f}" for b, n in ordered]
    lines += ["", "function (own samples) | % of busy", "---|---"]
    ranked = sorted(own.items(), key=lambda i: -i[1])[:top]
    lines += [f"{f} | {100 * n / busy:.1f}" for f, n in ranked]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--summarize"]:
        print(summarize(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.profile_real")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--src", default=str(ROOT), help="source tree the controller runs from")
    parser.add_argument("--python", default=sys.executable, help="the controller's interpreter")
    parser.add_argument("--pyspy", help="py-spy output: .txt collapsed stacks, else speedscope")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--audit", help="kube-apiserver's audit log, for requests per run")
    parser.add_argument("--pace", type=float, help="TaskRuns/s offered (default: a burst)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--controller-arg", action="append", default=[])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="profile-real-"))
    url, ctx = _ssl_context(yaml.safe_load(Path(args.kubeconfig).read_text()), tmp)
    result = asyncio.run(run(args, url, ctx, tmp))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
