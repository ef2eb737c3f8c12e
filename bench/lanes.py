"""`python -m bench.lanes`: the work queue's pod lane, A/B on devcluster under overload.

TaskRuns with zero-length pods are offered at ``--rate``, faster than devcluster and the
controller finish them on a small machine, so keys queue up. A is the controller of
``--base`` (its ``controller`` and ``taskrun`` packages from ``git archive``), B is this
tree's; they take turns (A B, then B A, ...) on fresh clusters in one run, so a shared
machine's drift falls on both. Printed: each repetition, then B/A of the medians.

``--write-latency``/``--write-jitter`` make devcluster answer the controller's writes
that much later (its fault plan), as a loaded real API server does (100 to 500 ms were
measured there, docs/benchmarks.md): the controller's workers, not devcluster's CPU, then
bound the throughput, as on the real control plane.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.burst import BurstResult, run_burst
from bench.cluster import ROOT, running_cluster, running_controller
from controller.k8s import USER_AGENT

FIGURES = {
    "completions/s": lambda r: r.throughput,
    "pod terminal -> status p50 ms": lambda r: r.pod_to_run_ms["p50"],
    "pod terminal -> status p99 ms": lambda r: r.pod_to_run_ms["p99"],
    "create -> pod p50 ms": lambda r: r.create_to_pod_ms["p50"],
    "create -> pod p99 ms": lambda r: r.create_to_pod_ms["p99"],
    "controller CPU ms / run": lambda r: r.cpu_seconds_per_run * 1000,
    "writes / run without Events": lambda r: r.writes_per_run_without_events,
}


def extract(revision: str, into: Path) -> str:
    """The controller of ``revision`` in ``into``; returns the commit it resolved to."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "controller", "taskrun"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


def one_run(n: int, rate: float, cwd: str | None, latency: float, jitter: float) -> BurstResult:
    with running_cluster() as cluster:
        cluster.faults.user_agent_prefix = USER_AGENT
        cluster.faults.verbs = frozenset({"create", "patch", "update", "delete"})
        cluster.faults.latency, cluster.faults.jitter = latency, jitter
        with running_controller(cluster, cwd=cwd) as proc:
            return asyncio.run(run_burst(cluster, proc.pid, n, rate=rate, timeout=900))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lanes")
    parser.add_argument("--n", type=int, default=1000, help="TaskRuns per run")
    parser.add_argument("--rate", type=float, default=50.0, help="offered TaskRuns/s")
    parser.add_argument("--reps", type=int, default=2, help="runs per side")
    parser.add_argument("--base", default="main", help="git revision of side A")
    parser.add_argument("--write-latency", type=float, default=0.0, help="s added to each")
    parser.add_argument("--write-jitter", type=float, default=0.0, help="s, uniform, added")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lanes.json"))
    args = parser.parse_args()
    results: dict[str, list[BurstResult]] = {"A": [], "B": []}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="taskrun-base-") as base_dir:
        base = extract(args.base, Path(base_dir))
        sides = {"A": base_dir, "B": None}
        for rep in range(args.reps):
            order = ["A", "B"] if rep % 2 == 0 else ["B", "A"]
            for side in order:
                result = one_run(
                    args.n, args.rate, sides[side], args.write_latency, args.write_jitter
                )
                results[side].append(result)
                print(
                    f"{side} rep {rep + 1}: {result.finished}/{args.n} finished, "
                    + ", ".join(f"{name} {fig(result):.1f}" for name, fig in FIGURES.items()),
                    flush=True,
                )
    print(
        f"\nA = {base}, B = this tree; {args.n} paced at {args.rate:g}/s; controller writes "
        f"+{args.write_latency:g} s + U(0, {args.write_jitter:g}) s; {started}"
    )
    print("| figure | A (each run) | B (each run) | B/A of the medians |")
    print("|---|---|---|---|")
    for name, fig in FIGURES.items():
        a = [fig(r) for r in results["A"]]
        b = [fig(r) for r in results["B"]]
        ratio = statistics.median(b) / statistics.median(a) if statistics.median(a) else 0.0
        cells = [", ".join(f"{v:,.1f}" for v in values) for values in (a, b)]
        print(f"| {name} | {cells[0]} | {cells[1]} | {ratio:.2f}x |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "base": base,
        "n": args.n,
        "rate": args.rate,
        "write_latency": args.write_latency,
        "write_jitter": args.write_jitter,
        "started": started,
        **{
            side: [
                {k: v for k, v in dataclasses.asdict(r).items() if not k.startswith("latencies")}
                for r in runs
            ]
            for side, runs in results.items()
        },
    }
    out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
