"""docs/benchmarks.md's first section, the real control plane (bench/real.py's results), and its
plots. The section sits between two markers, so `python -m bench` (the devcluster figures)
keeps it when it rewrites the rest of the file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
IMG = DOCS / "img"
BENCHMARKS = DOCS / "benchmarks.md"
# The analysis written by hand after a run (what holds each target back, measured); kept
# beside the results so that --report-only renders it again.
NOTES = ROOT / "bench" / "results" / "real-notes.md"
BEGIN = "<!-- bench.real: begin (python -m bench.real writes this section) -->"
END = "<!-- bench.real: end -->"

NAMES = {
    "taskrun": "TaskRun",
    "taskrun-keep": "TaskRun (keep_pod)",
    "taskrun-lean": "TaskRun (keep_pod, no logs)",
    "job": "Job",
}
COLORS = {
    "taskrun": "tab:blue",
    "taskrun-keep": "tab:green",
    "taskrun-lean": "tab:olive",
    "job": "tab:orange",
}


def _fmt(value: Any, digits: int = 0) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(a: Any, b: Any) -> str:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (a, b)) or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def _pairs(results: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(budget, shape, TaskRun run, Job run) in the order they ran."""
    out = []
    seen = set()
    for r in results["runs"]:
        key = (r["budget"], r["shape"])
        if key in seen:
            continue
        seen.add(key)
        both = {x["kind"]: x for x in results["runs"] if (x["budget"], x["shape"]) == key}
        if "taskrun" in both and "job" in both:
            out.append((key[0], key[1], both["taskrun"], both["job"]))
    return out


def _largest_bursts(
    results: dict[str, Any],
) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Per budget, the largest burst of zero-length pods: (budget, shape, TaskRun run, Job
    run), what the per-request tables show."""
    out = []
    for budget in dict.fromkeys(b for b, *_ in _pairs(results)):
        bursts = [x for x in _pairs(results) if x[0] == budget and not x[2]["rate"]
                  and not x[2].get("run_seconds")]  # fmt: skip
        if bursts:
            out.append(max(bursts, key=lambda x: x[2]["n"]))
    return out


def _describe(shape: str, run: dict[str, Any]) -> str:
    how = f"{run['n']:,} paced at {run['rate']:g}/s" if run["rate"] else f"{run['n']:,} in a burst"
    length = run.get("run_seconds") or 0
    return how + (f", {length:g} s pods" if length else ", zero-length pods")


def plots(results: dict[str, Any], prefix: str = "bench-real") -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    IMG.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    pairs = _pairs(results)
    budgets = list(dict.fromkeys(b for b, *_ in pairs))
    shapes = list(dict.fromkeys(s for _, s, *_ in pairs))
    if not pairs:
        return names

    fig, axes = plt.subplots(
        len(budgets), len(shapes), figsize=(3.6 * len(shapes), 3.0 * len(budgets)), squeeze=False
    )
    for budget, shape, tr, job in pairs:
        ax = axes[budgets.index(budget)][shapes.index(shape)]
        for run in (tr, job):
            times = run["completion_times_s"]
            ax.plot(times, range(1, len(times) + 1), color=COLORS[run["kind"]],
                    label=f"{NAMES[run['kind']]} {_fmt(run['throughput'], 1)}/s")  # fmt: skip
        ax.set_title(f"{_describe(shape, tr)}\nbudget: {budget}", fontsize=8)
        ax.set_xlabel("seconds since the first create", fontsize=8)
        ax.set_ylabel("finished", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    used = {(budgets.index(b), shapes.index(s)) for b, s, *_ in pairs}
    for i, row in enumerate(axes):
        for j, ax in enumerate(row):
            if (i, j) not in used:
                ax.set_visible(False)
    fig.suptitle("Throughput: finished runs over time, TaskRun controller vs Job controller")
    fig.tight_layout()
    fig.savefig(IMG / f"{prefix}-throughput.png", dpi=90)
    plt.close(fig)
    names.append(f"img/{prefix}-throughput.png")

    for metric, title in (
        ("latencies_pod_to_status_ms", "pod terminal -> TaskRun terminal / Job Complete (ms)"),
        ("latencies_create_to_terminal_ms", "create -> terminal (ms)"),
    ):
        fig, axes = plt.subplots(1, len(budgets), figsize=(6.5 * len(budgets), 4), squeeze=False)
        styles: list[Any] = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]
        for budget, shape, tr, job in pairs:
            ax = axes[0][budgets.index(budget)]
            style = styles[shapes.index(shape) % len(styles)]
            for run in (tr, job):
                values = run[metric]
                if not values:
                    continue
                ys = [(i + 1) / len(values) for i in range(len(values))]
                ax.plot([max(v, 0.1) for v in values], ys, linestyle=style,
                        color=COLORS[run["kind"]],
                        label=f"{NAMES[run['kind']]}, {_describe(shape, run)}")  # fmt: skip
            ax.set_title(f"budget: {budget}", fontsize=9)
        for ax in axes[0]:
            ax.set_xscale("log")
            ax.set_xlabel(title + ", log scale", fontsize=8)
            ax.set_ylabel("fraction of runs", fontsize=8)
            if metric == "latencies_pod_to_status_ms":
                ax.axvline(100, color="grey", linestyle="--", linewidth=1)
            ax.legend(fontsize=6)
        fig.suptitle(f"Latency CDF: {title}")
        fig.tight_layout()
        short = "pod-to-status" if "pod" in metric else "create-to-terminal"
        fig.savefig(IMG / f"{prefix}-cdf-{short}.png", dpi=90)
        plt.close(fig)
        names.append(f"img/{prefix}-cdf-{short}.png")
    return names


def _targets(results: dict[str, Any]) -> list[str]:
    """Issue 17's targets, met or missed, with what holds each back."""
    pairs = [x for x in _pairs(results) if x[0] == "equal"] or _pairs(results)
    lines = ["| target | measured | met |", "|---|---|---|"]
    for budget, shape, tr, job in pairs:
        if tr["rate"] and tr["rate"] < 10:
            continue  # a run offered below capacity finishes at the offered rate, either side
        met = tr["throughput"] >= job["throughput"]
        lines.append(
            f"| completions/s >= Job's at the same budget ({_describe(shape, tr)}, {budget}) | "
            f"{_fmt(tr['throughput'], 1)} vs {_fmt(job['throughput'], 1)} "
            f"({_ratio(tr['throughput'], job['throughput'])}x) | {'yes' if met else '**no**'} |"
        )
    for budget, shape, tr, job in pairs:
        a, b = tr["controller"]["writes"], job["controller"]["writes"]
        lines.append(
            f"| API writes per run <= Job's, Events apart ({_describe(shape, tr)}, {budget}) | "
            f"{_fmt(a, 2)} vs {_fmt(b, 2)} | {'yes' if a <= b else '**no**'} |"
        )
    paced = [r for r in results["runs"] if r["kind"] == "taskrun" and r["rate"]]
    for r in paced:
        p99 = r["pod_to_status_ms"]["p99"]
        lines.append(
            f"| p99 pod terminal -> TaskRun terminal at {r['rate']:g}/s <= 100 ms "
            f"({r['budget']}) | {_fmt(p99)} ms | {'yes' if p99 <= 100 else '**no**'} |"
        )
    zero: dict[str, dict[str, Any]] = {}
    for r in results["runs"]:
        zero_length = r["kind"] == "taskrun" and not r["rate"] and not r.get("run_seconds")
        if zero_length and (r["budget"] not in zero or r["n"] < zero[r["budget"]]["n"]):
            zero[r["budget"]] = r
    for r in results["runs"]:
        if r["kind"] == "taskrun" and r.get("run_seconds") and r["budget"] in zero:
            z = zero[r["budget"]]
            a, b = r["controller"]["requests"], z["controller"]["requests"]
            same = abs(a - b) <= 0.05 * max(a, b)
            lines.append(
                f"| requests per TaskRun independent of the task's length ({r['budget']}) | "
                f"{_fmt(a, 2)} with {r['run_seconds']:g} s pods vs {_fmt(b, 2)} zero-length | "
                f"{'yes' if same else '**no**'} |"
            )
    idle = results.get("idle")
    if idle:
        rss = idle["taskrun"]["peak_rss_mb"]
        lines.append(
            f"| RSS with {idle['n']:,} finished TaskRuns <= 100 MB | {_fmt(rss)} MB | "
            f"{'yes' if rss <= 100 else '**no**'} |"
        )
    lines.append(
        "| >= 30x fewer requests than KPO deferrable, 10-minute task | see the "
        "KubernetesPodOperator section (bench/kpo.py) | - |"
    )
    return lines


def _invocations(results: dict[str, Any]) -> list[str]:
    """When the figures come from several invocations (merged), which and under what load."""
    rows = results.get("invocations") or []
    if not rows:
        return []
    lines = ["The figures come from these invocations, each run paired on one control plane:", ""]
    for i, inv in enumerate(rows, 1):
        load = ", ".join(f"{x:.1f}" for x in inv["load_at_start"])
        end = ", ".join(f"{x:.1f}" for x in inv.get("load_at_end") or [])
        lines.append(
            f"{i}. `python -m bench.real {' '.join(inv['argv'])}` from {inv['date']} to "
            f"{inv.get('finished_at')}, load average {load} at the start"
            + (f", {end} at the end" if end else "")
            + (f"; {inv['note']}" if inv.get("note") else "")
        )
    return [*lines, ""]


def _latency_tables(results: dict[str, Any]) -> list[str]:
    """Per kind of request, the API server's time (audit log), for the largest burst at each
    budget: what a worker of each controller waits on."""
    lines: list[str] = []
    for budget, shape, tr, job in _largest_bursts(results):
        if "controller_request_ms_by_kind" not in tr:
            continue
        lines += [
            "",
            f"### The controllers' requests: API server time, {_describe(shape, tr)}, "
            f"budget {budget}",
            "",
            "From the audit log (request received to response complete), watches left out.",
            "",
            "| controller | request | per run | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        for run in (tr, job):
            for key, row in run["controller_request_ms_by_kind"].items():
                lines.append(
                    f"| {NAMES[run['kind']]} | `{key}` | {row['n'] / run['n']:.2f} | "
                    f"{_fmt(row['p50'])} | {_fmt(row['p99'])} |"
                )
    return lines


def section(results: dict[str, Any], plot_names: list[str]) -> str:
    load_start = ", ".join(f"{x:.2f}" for x in results["load_at_start"])
    load_end = ", ".join(f"{x:.2f}" for x in results.get("load_at_end", []))
    budgets = results["budgets"]
    lines = [
        BEGIN,
        "## On the real control plane: TaskRun controller vs Kubernetes' Job controller",
        "",
        f"Measured {results['date']} (to {results.get('finished_at', '?')}) on "
        f"{results['machine']}; load average (1, 5, 15 min) {load_start} at the start, "
        f"{load_end} at the end: the machine is shared with other work, so compare the two "
        "controllers within one run, not with other days. Reproduce with `make bench-real` "
        "(`python -m bench.real`; `--quick` for a smoke run); raw figures in "
        "`bench/results/real.json`.",
        "",
        *_invocations(results),
        "Set-up (bench/real.py): etcd, kube-apiserver, kube-controller-manager (with "
        "job-controller, garbage-collector-controller and ttl-after-finished-controller) and "
        "kube-scheduler from realcluster/, the node agent (`python -m devcluster.node`) as the "
        "only node, playing each pod from its scenario annotation (zero-length: "
        '`{"runSeconds": 0, "logs": ""}`). The TaskRun controller is the real '
        "`python -m controller`, logged in with deploy/base's ServiceAccount and ClusterRole "
        "(a TokenRequest token), started afresh for each of its runs; a Job is batch/v1 with "
        "one pod (`backoffLimit: 0`, `restartPolicy: Never`) whose template carries the same "
        "annotation. A TaskRun deletes its pod when it ends (its default `onFinishAction`), a "
        "Job keeps its pod: the TaskRun's pod delete is in its writes. Each run has a "
        "namespace of its own; the harness watches pods and TaskRuns/Jobs and stamps every "
        "transition with one clock. Requests come from kube-apiserver's audit log (Metadata "
        "level) by user: the controller's ServiceAccount vs the Job side's "
        "`job-controller`, `generic-garbage-collector` and `ttl-after-finished-controller` "
        "(kube-controller-manager runs with `--use-service-account-credentials`); Events "
        "are counted apart. A run's window closes when the controller has made no request "
        "for 3 s after the last status, so trailing writes (pod deletes) count.",
        "",
        "Request budgets: **default** is each as shipped: kube-controller-manager "
        "`--kube-api-qps 20 --kube-api-burst 30` (a token bucket per controller, since each "
        "has its own client) and `--concurrent-job-syncs 5`; the TaskRun controller has no "
        "client-side rate limit (kopf has none, nor has controller/k8s.py; its concurrency is "
        "`--max-workers 20`). **equal** is no client-side limit on either side: "
        f"kube-controller-manager `{' '.join(budgets.get('equal', []))}` (20 workers, as the "
        "TaskRun controller's), a QPS no run comes near. kube-scheduler runs with "
        f"`{' '.join(results['scheduler_args'])}` in both (its default 50 QPS would cap every "
        f"run at 50 binds/s) and the node takes {results['node_max_pods']:,} pods (the "
        "kubelet's default 110 would cap a fixed-length burst): neither controller waits on "
        "them for a budget's sake; what they cost is in the CPU table.",
        "",
        "CPU and RSS: the TaskRun controller is its own process; the Job controller's figures "
        "are kube-controller-manager's, which also runs the garbage collector, the "
        "ServiceAccount, namespace, quota and other controllers (realcluster's CONTROLLERS), "
        "so they are an upper bound for the Job controller alone.",
        "",
        "### Issue 17's targets",
        "",
        *_targets(results),
        "",
        *([NOTES.read_text().strip(), ""] if NOTES.exists() else []),
        "### Side by side",
        "",
        "| budget | shape | | finished | completions/s | create->terminal p50 / p99 ms | "
        "pod terminal->status p50 / p99 ms | requests/run | writes/run | Events/run | "
        "controller CPU ms/run | controller peak RSS MB |",
        "|" + "---|" * 12,
    ]
    for budget, shape, tr, job in _pairs(results):
        for run in (tr, job):
            c = run["controller"]
            lines.append(
                f"| {budget} | {_describe(shape, run)} | {NAMES[run['kind']]} | "
                f"{run['finished']:,}/{run['n']:,} | {_fmt(run['throughput'], 1)} | "
                f"{_fmt(run['create_to_terminal_ms']['p50'])} / "
                f"{_fmt(run['create_to_terminal_ms']['p99'])} | "
                f"{_fmt(run['pod_to_status_ms']['p50'])} / {_fmt(run['pod_to_status_ms']['p99'])}"
                f" | {_fmt(c['requests'], 2)} | {_fmt(c['writes'], 2)} | {_fmt(c['events'], 2)} "
                f"| {_fmt(run['controller_cpu_ms_per_run'], 1)} | "
                f"{_fmt(run['controller_peak_rss_mb'])} |"
            )
        lines.append(
            f"| | | **TaskRun/Job** | | **{_ratio(tr['throughput'], job['throughput'])}** | "
            f"{_ratio(tr['create_to_terminal_ms']['p50'], job['create_to_terminal_ms']['p50'])}"
            f" / {_ratio(tr['create_to_terminal_ms']['p99'], job['create_to_terminal_ms']['p99'])}"
            f" | {_ratio(tr['pod_to_status_ms']['p50'], job['pod_to_status_ms']['p50'])} / "
            f"{_ratio(tr['pod_to_status_ms']['p99'], job['pod_to_status_ms']['p99'])} | "
            f"{_ratio(tr['controller']['requests'], job['controller']['requests'])} | "
            f"{_ratio(tr['controller']['writes'], job['controller']['writes'])} | "
            f"{_ratio(tr['controller']['events'], job['controller']['events'])} | "
            f"{_ratio(tr['controller_cpu_ms_per_run'], job['controller_cpu_ms_per_run'])} | "
            f"{_ratio(tr['controller_peak_rss_mb'], job['controller_peak_rss_mb'])} |"
        )
    lines += [
        "",
        "### Where the CPU went (ms per run, each process, over the run's window)",
        "",
        "| budget | shape | | controller | kube-apiserver | etcd | kube-scheduler | "
        "node agent | harness | controller's requests p50 / p99 ms | load average after |",
        "|" + "---|" * 11,
    ]
    for budget, shape, tr, job in _pairs(results):
        for run in (tr, job):
            cpu = run["usage"]["cpu_ms"]
            n = run["n"]
            ctl = "controller" if run["kind"] == "taskrun" else "kube-controller-manager"
            lines.append(
                f"| {budget} | {_describe(shape, run)} | {NAMES[run['kind']]} | "
                f"{_fmt(cpu[ctl] / n, 1)} | {_fmt(cpu['kube-apiserver'] / n, 1)} | "
                f"{_fmt(cpu['etcd'] / n, 1)} | {_fmt(cpu['kube-scheduler'] / n, 1)} | "
                f"{_fmt(cpu['node-agent'] / n, 1)} | {_fmt(cpu['harness'] / n, 1)} | "
                f"{_fmt(run.get('controller_request_ms', {}).get('p50'))} / "
                f"{_fmt(run.get('controller_request_ms', {}).get('p99'))} | "
                f"{_fmt(run['usage']['load_after'][0], 2)} |"
            )
    lines += _latency_tables(results)
    lines += [
        "",
        "### Requests per run by client, verb and resource",
        "",
        "Largest burst at each budget; per run, every client (`harness` is the benchmark "
        "creating the objects and watching them).",
        "",
    ]
    for budget, shape, tr, job in _largest_bursts(results):
        for run in (tr, job):
            lines.append(f"{NAMES[run['kind']]}, {_describe(shape, run)}, budget {budget}:")
            lines.append("")
            for user, rows in run["requests_by_user"].items():
                cells = ", ".join(f"`{k}` {v:.2f}" for k, v in rows.items() if v >= 0.005)
                if cells:
                    lines.append(f"- {user}: {cells}")
            lines.append("")
    idle = results.get("idle")
    if idle:
        lines += [
            f"### Idle with {idle['n']:,} finished TaskRuns and {idle['n']:,} finished Jobs",
            "",
            "A fresh control plane holding only those (status written directly, neither "
            "controller running); each window starts once the controller has made no request "
            f"for 3 s and lasts {idle['taskrun']['seconds']:g} s.",
            "",
            "| process | RSS MB | peak RSS MB in the window | peak since start (VmHWM) MB | "
            "CPU % of a core | requests/min | writes/min | start-up s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, name in (
            ("taskrun", "TaskRun controller"),
            ("job", "kube-controller-manager with the Job controller"),
            ("kcm_without_job_controller", "kube-controller-manager without it"),
        ):
            w = idle[key]
            lines.append(
                f"| {name} | {_fmt(w['rss_mb'])} | {_fmt(w['peak_rss_mb'])} | "
                f"{_fmt(w.get('hwm_mb', float('nan')))} | {_fmt(w['cpu_percent'], 2)} | "
                f"{_fmt(w['requests_per_minute'], 1)} | "
                f"{_fmt(w['writes_per_minute'], 1)} | {_fmt(w['settle_seconds'], 1)} |"
            )
        lines.append("")
    for name in plot_names:
        lines.append(f"![{name}]({name})")
    lines += ["", END]
    return "\n".join(lines)


def write_real_section(results: dict[str, Any], path: Path = BENCHMARKS) -> Path:
    """Puts the section first in docs/benchmarks.md (replacing the previous one)."""
    text = section(results, plots(results))
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(merge(old, text))
    return path


def merge(document: str, real_section: str) -> str:
    """``document`` with ``real_section`` right after its title, replacing an older one."""
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + real_section + tail
    title, _, body = document.partition("\n")
    if not title.startswith("# "):
        return real_section + "\n\n" + document
    return title + "\n\n" + real_section + "\n\n" + body.lstrip("\n")


DEVCLUSTER_HEADING = "\n## On devcluster"


def kept_section(path: Path = BENCHMARKS) -> str:
    """What comes before the devcluster figures in the current docs/benchmarks.md (this
    section, then the other real-API-server ones: KubernetesPodOperator, the profile), for
    bench/report.py to keep when it rewrites the devcluster part."""
    if not path.exists():
        return ""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return ""
    start = text.index(BEGIN)
    stop = text.find(DEVCLUSTER_HEADING, start)
    return text[start : stop if stop >= 0 else text.index(END) + len(END)].rstrip()
