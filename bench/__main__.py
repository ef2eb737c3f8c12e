"""`python -m bench`: run the benchmarks and write docs/benchmarks.md.

python -m bench                  # the full set (N = 1,000 and 5,000; idle with 10,000)
python -m bench --quick          # small sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

from bench.burst import run_burst
from bench.cluster import ROOT, running_cluster, running_controller
from bench.idle import measure_idle, run_populate
from bench.kpo import markdown_section
from bench.report import write_report

RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def controller_env() -> str:
    """Which dependencies the measured controller ran with."""
    if os.environ.get("BENCH_CONTROLLER_PYTHON"):
        return (
            "`BENCH_CONTROLLER_PYTHON` ("
            + os.environ["BENCH_CONTROLLER_PYTHON"]
            + "; `make bench` points it at .venv-runtime, the image's requirements/runtime.lock)"
        )
    return "the benchmark's own venv (development dependencies)"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--rate", type=float, default=50.0, help="offered TaskRuns/s for latency")
    parser.add_argument("--idle-runs", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="leave devcluster's garbage collector as Python sets it (see bench/cluster.py)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write docs/benchmarks.md from bench/results/*.json without measuring",
    )
    args = parser.parse_args()
    if args.report_only:
        report(json.loads((RESULTS / "latest.json").read_text()))
        return 0
    sizes = [50, 200] if args.quick else [int(s) for s in args.sizes.split(",")]
    idle_runs = 500 if args.quick else args.idle_runs
    idle_seconds = 10.0 if args.quick else args.idle_seconds
    results: dict[str, object] = {
        "machine": machine(),
        "controller_env": controller_env(),
        "devcluster_gc": "Python's default" if args.default_gc else "quiet (bench/cluster.py)",
        "date": time.strftime("%Y-%m-%d"),
        "bursts": [],
        "paced": None,
        "idle": None,
    }

    for n in sizes:
        with (
            running_cluster(default_gc=args.default_gc) as cluster,
            running_controller(cluster) as proc,
        ):
            burst = asyncio.run(run_burst(cluster, proc.pid, n))
            print(
                f"burst n={n}: {burst.throughput:.1f}/s, writes/run "
                f"{burst.writes_per_run_without_events:.2f} (+events "
                f"{burst.writes_per_run:.2f}), p99 pod->run {burst.pod_to_run_ms['p99']:.0f} ms,"
                f" peak RSS {burst.peak_rss_mb:.0f} MB",
                flush=True,
            )
            results["bursts"].append(dataclasses.asdict(burst))  # type: ignore[attr-defined]
    n_paced = 500 if args.quick else 3000
    with (
        running_cluster(default_gc=args.default_gc) as cluster,
        running_controller(cluster) as proc,
    ):
        paced = asyncio.run(run_burst(cluster, proc.pid, n_paced, rate=args.rate))
        print(
            f"paced {args.rate}/s n={n_paced}: p99 pod->run {paced.pod_to_run_ms['p99']:.0f} ms",
            flush=True,
        )
        results["paced"] = dataclasses.asdict(paced)
    with running_cluster(default_gc=args.default_gc) as cluster:
        run_populate(cluster.url, idle_runs)
        started = time.monotonic()
        with running_controller(cluster) as proc:
            idle = measure_idle(cluster, proc.pid, idle_runs, idle_seconds, started)
            print(
                f"idle with {idle_runs}: {idle.cpu_percent:.1f}% CPU, RSS {idle.rss_mb:.0f} MB, "
                f"{idle.requests_per_minute:.1f} requests/min",
                flush=True,
            )
            results["idle"] = dataclasses.asdict(idle)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("quick.json" if args.quick else "latest.json")
    out.write_text(json.dumps(results, indent=2))
    if not args.no_report and not args.quick:
        report(results)
    return 0


def report(results: dict[str, object]) -> None:
    """docs/benchmarks.md, with the KPO side by side when `make bench-kpo` has run."""
    kpo_file = RESULTS / "kpo.json"
    extra = ""
    if kpo_file.exists():
        kpo_results = json.loads(kpo_file.read_text())
        results = {**results, "kpo": kpo_results}
        extra = "\n" + markdown_section(kpo_results)
    write_report(results, extra_sections=extra)


if __name__ == "__main__":
    raise SystemExit(main())
