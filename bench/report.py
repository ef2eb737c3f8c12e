"""docs/benchmarks.md and its plots from a results dict (bench/results/latest.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.real_report import kept_section

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
IMG = DOCS / "img"

TARGETS = [
    # (what, target, how to read it from results, lower is better)
    (
        "API writes per successful TaskRun, excluding Events (most of any run)",
        5.0,
        lambda r: max(b["writes_per_run_without_events"] for b in [*r["bursts"], r["paced"]]),
        True,
    ),
    (
        "p99 pod terminal -> TaskRun terminal at 50 TaskRuns/s (ms)",
        200.0,
        lambda r: r["paced"]["pod_to_run_ms"]["p99"],
        True,
    ),
    (
        "sustained end-to-end throughput (TaskRuns/s, largest burst)",
        100.0,
        lambda r: r["bursts"][-1]["throughput"],
        False,
    ),
    ("RSS with 10,000 TaskRuns (MB)", 150.0, lambda r: r["idle"]["peak_rss_mb"], True),
    (
        "fewer API requests than KPO deferrable, 60 s task (x, controller included)",
        10.0,
        lambda r: r["kpo"]["target_10x_fewer_requests"]["ratio"],
        False,
    ),
]


# What stands in the way of a target, printed only when it is missed.
OBSTACLES = {
    "API writes per successful TaskRun, excluding Events (most of any run)": (
        "a pod that waits longer than --pending-report-seconds (2 s) is reported Pending "
        "before Running: one more status write."
    ),
    "p99 pod terminal -> TaskRun terminal at 50 TaskRuns/s (ms)": (
        "queueing and pauses: near the machine's capacity every watch event waits behind "
        "others in both event loops, and a full garbage collection stops a loop (devcluster's "
        "full collections are kept rare by the bench, as a Go API server has none to pause "
        "for; see bench/cluster.py)."
    ),
    "sustained end-to-end throughput (TaskRuns/s, largest burst)": (
        "CPU. Two cores serve the controller, devcluster (API server, kubelet) and the "
        "harness; see the CPU columns. On the controller side kopf's per-event machinery "
        "(about 8 watch events per TaskRun) and the HTTP client take most of it; on the "
        "devcluster side copies and schema validation of every write."
    ),
    "fewer API requests than KPO deferrable, 60 s task (x, controller included)": (
        "the floor per task. Any run needs a TaskRun create, a pod create, a status write, "
        "a pod delete and one watch, while KPO deferrable's trigger makes one read per "
        "2 s poll: at 60 s that is about 40 requests, so 10x would allow 4 in total. The "
        "ratio grows with the task's length (see the KPO section); the Airflow side alone "
        "is at the ratio given there."
    ),
    "RSS with 10,000 TaskRuns (MB)": (
        "per-object memory: the controller's cache keeps finished TaskRuns cut down "
        "(finished_view), kopf keeps about 0.8 KB per object. Sharding (`--selector`) "
        "divides it."
    ),
}

HISTORY = Path(__file__).resolve().parent / "history.md"


def _plot(results: dict[str, Any]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    IMG.mkdir(parents=True, exist_ok=True)
    names = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for burst in [*results["bursts"], results["paced"]]:
        values = sorted(burst["latencies_pod_to_run_ms"])
        if not values:
            continue
        ys = [(i + 1) / len(values) for i in range(len(values))]
        label = f"n={burst['n']}" + (f" at {burst['rate']:.0f}/s" if burst["rate"] else " burst")
        ax.plot(values, ys, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("pod terminal -> TaskRun terminal (ms, log scale)")
    ax.set_ylabel("fraction of TaskRuns")
    ax.axvline(200, color="grey", linestyle="--", linewidth=1)
    ax.legend()
    ax.set_title("Status latency (CDF)")
    fig.tight_layout()
    fig.savefig(IMG / "bench-latency-cdf.png", dpi=100)
    names.append("img/bench-latency-cdf.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    kinds = sorted({k for b in results["bursts"] for k in b["writes_by_kind"]})
    width = 0.8 / max(1, len(results["bursts"]))
    for i, burst in enumerate(results["bursts"]):
        xs = [j + i * width for j in range(len(kinds))]
        ax.bar(
            xs, [burst["writes_by_kind"].get(k, 0) for k in kinds], width, label=f"n={burst['n']}"
        )
    ax.set_xticks([j + width * (len(results["bursts"]) - 1) / 2 for j in range(len(kinds))])
    ax.set_xticklabels(kinds, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("requests per TaskRun")
    ax.set_title("API writes per TaskRun, by kind")
    ax.legend()
    fig.tight_layout()
    fig.savefig(IMG / "bench-writes.png", dpi=100)
    names.append("img/bench-writes.png")
    plt.close(fig)
    return names


def write_report(results: dict[str, Any], extra_sections: str = "") -> Path:
    plots = _plot(results)
    lines = [
        "# Benchmarks",
        "",
        "## On devcluster (the development loop)",
        "",
        f"Measured {results['date']} on {results['machine']}. devcluster (the simulated API",
        "server and kubelet) shares the machine with the controller, so absolute figures are",
        "pessimistic; compare ratios within one run. Reproduce with `make bench`",
        "(raw figures land in `bench/results/latest.json`). The controller runs from",
        f"{results.get('controller_env', 'the development venv')}. devcluster's garbage",
        f"collector: {results.get('devcluster_gc', 'default')}.",
        "",
        "### Targets",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
    ]
    missed: list[str] = []
    for what, goal, read, lower in TARGETS:
        try:
            value = float(read(results))
        except (KeyError, TypeError, IndexError):
            value = float("nan")
        met = value <= goal if lower else value >= goal
        ratio = value / goal if goal else float("nan")
        lines.append(
            f"| {what} | {'<=' if lower else '>='} {goal:g} | {value:.2f} "
            f"({ratio:.2f}x goal) | {'yes' if met else '**no**'} |"
        )
        if not met:
            gap = (value - goal) / goal if lower else (goal - value) / goal
            missed.append(
                f"- **{what}**: {value:.2f} against {goal:g}, missed by {100 * gap:.0f} %. "
                f"In the way: {OBSTACLES.get(what, 'not analysed yet.')}"
            )
    if missed:
        lines += ["", "Missed targets:", "", *missed]
    lines += [
        "",
        "### Bursts of zero-length TaskRuns",
        "",
        "| N | offered | finished | seconds | TaskRuns/s | create->pod p50/p99 ms | "
        "pod->run p50/p99 ms | requests/run | writes/run (no Events) | controller CPU ms/run | "
        "devcluster + harness CPU ms/run | controller peak RSS MB |",
        "|" + "---|" * 12,
    ]
    for b in [*results["bursts"], results["paced"]]:
        offered = f"{b['rate']:.0f}/s" if b["rate"] else "burst"
        lines.append(
            f"| {b['n']} | {offered} | {b['finished']} | {b['seconds']:.1f} | "
            f"{b['throughput']:.1f} | {b['create_to_pod_ms']['p50']:.0f} / "
            f"{b['create_to_pod_ms']['p99']:.0f} | {b['pod_to_run_ms']['p50']:.0f} / "
            f"{b['pod_to_run_ms']['p99']:.0f} | {b['requests_per_run']:.2f} | "
            f"{b['writes_per_run']:.2f} ({b['writes_per_run_without_events']:.2f}) | "
            f"{b['cpu_seconds_per_run'] * 1000:.1f} | "
            f"{b.get('cluster_cpu_seconds_per_run', float('nan')) * 1000:.1f} | "
            f"{b['peak_rss_mb']:.0f} |"
        )
    lines += ["", "Writes per TaskRun by kind (largest burst):", ""]
    for kind, count in results["bursts"][-1]["writes_by_kind"].items():
        lines.append(f"- `{kind}`: {count:.2f}")
    idle = results["idle"]
    lines += [
        "",
        f"### Idle with {idle['taskruns']:,} finished TaskRuns",
        "",
        f"- CPU: {idle['cpu_percent']:.2f}% of one core over {idle['seconds']:.0f} s",
        f"- RSS: {idle['rss_mb']:.0f} MB (peak {idle['peak_rss_mb']:.0f} MB)",
        f"- API requests: {idle['requests_per_minute']:.1f}/min, writes "
        f"{idle['writes_per_minute']:.1f}/min",
        f"- start-up to steady state: {idle['startup_seconds']:.1f} s (the window starts once "
        "the controller has made no request for 3 s)",
        "- An idle controller's only requests are watch renewals: kopf re-opens each watch "
        "every `watching.server_timeout` (300 s), so a 60 s window may see none or one.",
        "",
    ]
    for plot in plots:
        lines.append(f"![{plot}]({plot})")
    if HISTORY.exists():
        lines += ["", HISTORY.read_text().rstrip()]
    lines.append(extra_sections)
    out = DOCS / "benchmarks.md"
    # The real control plane's section (bench/real_report.py) stays first.
    real = kept_section(out)
    if real:
        lines[1:1] = ["", real]
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out
