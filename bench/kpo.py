"""Side by side with KubernetesPodOperator: API requests and waiting CPU for one task.

`python -m bench.kpo [--seconds 60]` (in the Airflow venv: it runs the real
cncf.kubernetes provider) starts one devcluster and the controller, then runs the same
task -- a pod that runs `--seconds` and prints a line every 5 s -- in four modes, each in
its own namespace:

- KPO blocking, KPO deferrable (KubernetesPodOperator + KubernetesPodTrigger);
- TaskRunOperator blocking, TaskRunOperator deferrable (TaskRunTrigger), with the
  controller doing the pod work.

`python -m bench.kpo --cluster real [--seconds 60,600]` does the same on the real control
plane (bench.kpo_real: kube-apiserver, etcd, kube-controller-manager, kube-scheduler, the
node agent, the controller as its ServiceAccount), once per task length, the four modes
side by side in one window (`--no-concurrent`: one at a time, devcluster's default).

Each task runs in a subprocess (bench.kpo_worker) that plays the worker and the
triggerer and measures its own CPU per phase. API requests come from devcluster's
request log or kube-apiserver's audit log, by user agent: the worker's clients say
`kpo-bench/<mode>`, the controller says `kopf` / `taskrun-controller`. The controller's
share is what it sent to the task's namespace from the task's start until it has been
quiet for SETTLE_QUIET s after the task ended; its cluster-wide traffic (watch re-opens,
discovery) is shared by all TaskRuns and reported apart. The controller's CPU is read from
/proc over the same window and split between the TaskRuns in it.

Writes bench/results/kpo.json (kpo-real.json); `markdown_section(results)`
(`markdown_section_real`) renders it for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cluster import ROOT, running_cluster, running_controller
from bench.kpo_worker import LOG_MARK, MODES, USER_AGENT_PREFIX
from bench.procstat import sample

RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
CONTROLLER_AGENTS = ("kopf", "taskrun-controller")
REFERENCE = "kpo-deferrable"
TARGET_RATIO = 30
# After the task returns, the controller may still write (status, pod deletion): the
# window stays open until it has been quiet this long (at most SETTLE_MAX).
SETTLE_QUIET = 3.0
SETTLE_MAX = 20.0
LABELS = {
    "kpo-blocking": "KPO blocking",
    "kpo-deferrable": "KPO deferrable",
    "taskrun-blocking": "TaskRunOperator blocking + controller",
    "taskrun-deferrable": "TaskRunOperator deferrable + controller",
}


def _side(user_agent: str) -> str:
    if user_agent.startswith(USER_AGENT_PREFIX):
        return "airflow"
    if user_agent.startswith(CONTROLLER_AGENTS):
        return "controller"
    return "other"


def _key(record: Any) -> str:
    what = record.resource + (f"/{record.subresource}" if record.subresource else "")
    what = what or record.path  # discovery and the like
    return f"{record.verb} {what}"


def _settle(cluster: Any, since: float, namespaces: list[str]) -> float:
    """Wait until the controller sent nothing to `namespaces` for SETTLE_QUIET s; returns
    the window end."""
    deadline = time.time() + SETTLE_MAX
    wanted = set(namespaces)
    while time.time() < deadline:
        last = max(
            (
                r.started
                for r in cluster.requests.records
                if r.started >= since
                and r.namespace in wanted
                and _side(r.user_agent) == "controller"
            ),
            default=since,
        )
        if time.time() - max(last, since) >= SETTLE_QUIET:
            break
        time.sleep(0.25)
    return time.time()


def namespace_for(mode: str, seconds: float) -> str:
    return f"kpo-{round(seconds)}s-{mode}"


@dataclass
class Worker:
    """One task's worker subprocess (bench.kpo_worker) and its files."""

    mode: str
    namespace: str
    seconds: float
    proc: subprocess.Popen[bytes]
    out: Path
    log: Path
    go_file: Path
    ended: float = 0.0


def start_worker(
    cluster: Any, mode: str, seconds: float, workdir: Path, python: str = sys.executable
) -> Worker:
    namespace = namespace_for(mode, seconds)
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    if hasattr(cluster, "namespace_ready"):
        cluster.namespace_ready(namespace)
    stem = f"{round(seconds)}s-{mode}"
    out, log, go_file = (workdir / f"{stem}{ext}" for ext in (".json", ".log", ".go"))
    env = {**os.environ, "AIRFLOW_HOME": str(workdir / "airflow-home")}
    env.pop("KUBECONFIG", None)
    with open(log, "w") as log_fh:
        proc = subprocess.Popen(
            [
                python,
                "-m",
                "bench.kpo_worker",
                "--mode",
                mode,
                "--kubeconfig",
                str(workdir / "kubeconfig"),
                "--namespace",
                namespace,
                "--seconds",
                str(seconds),
                "--out",
                str(out),
                "--go-file",
                str(go_file),
            ],
            env=env,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
        )
    return Worker(mode, namespace, seconds, proc, out, log, go_file)


def run_group(
    cluster: Any, controller_pid: int, modes: list[str], seconds: float, workdir: Path
) -> list[dict[str, Any]]:
    """Run `modes` side by side (each in its own namespace) in one measurement window."""
    workers = [start_worker(cluster, mode, seconds, workdir) for mode in modes]
    # The window opens once every worker has loaded Airflow and built its operator.
    deadline = time.monotonic() + 120 + 60 * len(workers)
    for w in workers:
        ready = Path(f"{w.go_file}.ready")
        while not ready.exists() and w.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    cpu0 = sample(controller_pid).cpu_seconds
    started = time.time()
    for w in workers:
        w.go_file.touch()
    timeout = seconds * 4 + 180
    pending = list(workers)
    while pending:
        for w in list(pending):
            if w.proc.poll() is not None:
                w.ended = time.time()
                pending.remove(w)
        if pending and time.time() - started > timeout:
            for w in pending:
                w.proc.kill()
                w.proc.wait()
                w.ended = time.time()
            pending = []
        time.sleep(0.05)
    ended = _settle(cluster, started, [w.namespace for w in workers])
    controller_cpu = sample(controller_pid).cpu_seconds - cpu0
    records = [r for r in cluster.requests.records if started <= r.started <= ended]
    taskruns = sum(1 for w in workers if w.mode.startswith("taskrun"))
    group = {w.namespace for w in workers}
    return [summarize(w, records, started, ended, group, controller_cpu, taskruns) for w in workers]


def summarize(
    w: Worker,
    records: list[Any],
    started: float,
    ended: float,
    group: set[str],
    controller_cpu: float,
    taskruns: int,
) -> dict[str, Any]:
    """One mode's figures from the window's records.

    The worker's requests are those with its own user agent; the controller's, those in
    its namespace; the controller's cluster-wide ones (no namespace: watch re-opens,
    discovery) are shared by every TaskRun and kept apart; its requests in the other
    modes' namespaces belong to them. `other` is the rest of the cluster (scheduler, node,
    controller manager) in this namespace: the pod's life, the same for every mode.
    """
    mode, namespace, seconds = w.mode, w.namespace, w.seconds
    task: dict[str, Any] = (
        json.loads(w.out.read_text()) if w.out.exists() else {"ok": False, "phases": []}
    )
    if w.proc.returncode and not task.get("error"):
        task["error"] = f"worker exited with {w.proc.returncode}"
    task_log = w.log.read_text(errors="replace")
    own_agent = f"{USER_AGENT_PREFIX}{mode} "
    by_side: dict[str, list[Any]] = {"airflow": [], "controller": [], "shared": [], "other": []}
    for record in records:
        side = _side(record.user_agent)
        if side == "airflow":
            if record.user_agent.startswith(own_agent):
                by_side["airflow"].append(record)
        elif side == "controller":
            if record.namespace == namespace:
                by_side["controller"].append(record)
            elif not record.namespace:
                # Cluster-wide watch re-opens and discovery: shared by every TaskRun.
                by_side["shared"].append(record)
        elif record.namespace == namespace:
            by_side["other"].append(record)
    phases = task.get("phases", [])
    airflow_by_phase = {
        p["name"]: sum(1 for r in by_side["airflow"] if p["started"] <= r.started <= p["ended"])
        for p in phases
    }
    waiting_role = "worker" if mode.endswith("blocking") else "triggerer"
    airflow_cpu = sum(p["cpu_seconds"] for p in phases)
    waiting_cpu = sum(p["cpu_seconds"] for p in phases if p["role"] == waiting_role)
    uses_controller = mode.startswith("taskrun")
    # The controller's CPU over the window, split evenly between the TaskRuns in it (they
    # are the same work for the controller); with no TaskRun in the window it is the
    # controller's idle cost.
    if uses_controller:
        ctl_cpu: float | None = controller_cpu / max(1, taskruns)
    else:
        ctl_cpu = controller_cpu if taskruns == 0 else None
    result = {
        "mode": mode,
        "label": LABELS[mode],
        "namespace": namespace,
        "ok": bool(task.get("ok")),
        "error": task.get("error"),
        "seconds": seconds,
        "window_seconds": round(ended - started, 3),
        "task_seconds": round(w.ended - started, 3),
        "requests": {
            "airflow": len(by_side["airflow"]),
            "controller": len(by_side["controller"]),
            "controller_shared": len(by_side["shared"]),
            "other": len(by_side["other"]),
            "total": len(by_side["airflow"])
            + (len(by_side["controller"]) if uses_controller else 0),
        },
        "airflow_requests_by_phase": airflow_by_phase,
        "airflow_requests_by_kind": dict(Counter(_key(r) for r in by_side["airflow"])),
        "controller_requests_by_kind": dict(Counter(_key(r) for r in by_side["controller"])),
        "controller_shared_requests_by_kind": dict(Counter(_key(r) for r in by_side["shared"])),
        "other_requests_by_agent": dict(
            Counter(r.user_agent.split("/")[0] for r in by_side["other"])
        ),
        "users": {
            side: sorted({getattr(r, "user", "") for r in recs} - {""})
            for side, recs in by_side.items()
            if side != "other"
        },
        "cpu_seconds": {
            "airflow": round(airflow_cpu, 3),
            "airflow_waiting": round(waiting_cpu, 3),
            "waiting_role": waiting_role,
            "controller": None if ctl_cpu is None else round(ctl_cpu, 3),
            "controller_window": round(controller_cpu, 3),
            "taskruns_in_window": taskruns,
            "waiting_total": round(waiting_cpu + ((ctl_cpu or 0.0) if uses_controller else 0.0), 3),
        },
        "phases": [
            {
                "name": p["name"],
                "role": p["role"],
                "seconds": round(p["ended"] - p["started"], 3),
                "cpu_seconds": round(p["cpu_seconds"], 3),
                "requests": airflow_by_phase.get(p["name"], 0),
                "rss_mb": p.get("rss_mb"),
            }
            for p in phases
        ],
        "trigger_watch_timeout_seconds": task.get("watch_timeout_seconds"),
        "pod_log_lines_in_task_log": task_log.count(LOG_MARK),
        "pod_log_lines_expected": max(1, int(seconds // 5)),
    }
    if not result["ok"]:
        result["task_log_tail"] = task_log[-4000:]
    return result


def add_ratios(results: dict[str, Any]) -> None:
    modes = {m["mode"]: m for m in results["modes"]}
    ref = modes.get(REFERENCE)
    for m in results["modes"]:
        if ref is None:
            m["ratio_requests"] = m["ratio_waiting_cpu"] = None
            continue
        total = m["requests"]["total"]
        cpu = m["cpu_seconds"]["waiting_total"]
        m["ratio_requests"] = round(ref["requests"]["total"] / total, 2) if total else None
        airflow = m["requests"]["airflow"]
        m["ratio_requests_airflow_only"] = (
            round(ref["requests"]["total"] / airflow, 2) if airflow else None
        )
        ref_cpu = ref["cpu_seconds"]["waiting_total"]
        m["ratio_waiting_cpu"] = round(ref_cpu / cpu, 2) if cpu > 0 else None
    target = modes.get("taskrun-deferrable")
    if ref and target and target["ratio_requests"] is not None:
        results["target_10x_fewer_requests"] = {
            "ratio": target["ratio_requests"],
            "met": target["ratio_requests"] >= 10,
            "ratio_airflow_only": target["ratio_requests_airflow_only"],
        }
        kpo_rate = _trigger_rate(ref, fixed=0)
        # TaskRunTrigger: one watch from the create's resourceVersion, then one re-watch
        # per watch timeout, resumed from the last version (whether one falls inside a
        # short run is luck: take the larger of the two).
        taskrun_rate = _trigger_rate(target, fixed=1)
        timeout = target.get("trigger_watch_timeout_seconds")
        if taskrun_rate is not None and timeout:
            taskrun_rate = max(taskrun_rate, 1 / timeout)
        if kpo_rate and taskrun_rate is not None and kpo_rate > 10 * taskrun_rate:
            need = 10 * target["requests"]["total"] - ref["requests"]["total"]
            results["target_10x_fewer_requests"].update(
                kpo_trigger_requests_per_second=round(kpo_rate, 3),
                taskrun_trigger_requests_per_second=round(taskrun_rate, 3),
                ten_x_at_seconds=round(
                    results["seconds"] + max(0.0, need) / (kpo_rate - 10 * taskrun_rate), 1
                ),
            )


def _trigger_rate(mode: dict[str, Any], fixed: int) -> float | None:
    """Requests per second of the trigger beyond its `fixed` first requests."""
    for phase in mode["phases"]:
        if phase["role"] == "triggerer" and phase["seconds"] > 0:
            return float(max(0, phase["requests"] - fixed)) / phase["seconds"]
    return None


def run(seconds: float, modes: list[str], concurrent: bool = False) -> dict[str, Any]:
    """On devcluster: one mode at a time (or all side by side with `concurrent`)."""
    results: dict[str, Any] = {
        "benchmark": "kpo",
        "cluster": "devcluster",
        "date": time.strftime("%Y-%m-%d"),
        "seconds": seconds,
        "concurrent": concurrent,
        "versions": _versions(),
        "modes": [],
    }
    groups = [modes] if concurrent else [[m] for m in modes]
    with tempfile.TemporaryDirectory(prefix="kpo-bench-") as tmp:
        workdir = Path(tmp)
        with running_cluster() as cluster, running_controller(cluster) as controller:
            cluster.write_kubeconfig(workdir / "kubeconfig")
            time.sleep(1.0)  # let the controller finish starting up before the first window
            for group in groups:
                for result in run_group(cluster, controller.pid, group, seconds, workdir):
                    results["modes"].append(result)
                    print(_summary_line(result), flush=True)
    add_ratios(results)
    return results


def _workdir(keep: Path | None, prefix: str) -> Any:
    """A temporary directory, or `keep` (created, left in place: logs, audit log)."""
    if keep is None:
        return tempfile.TemporaryDirectory(prefix=prefix)
    keep.mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(str(keep))


def run_real(
    lengths: list[float], modes: list[str], concurrent: bool = True, keep: Path | None = None
) -> dict[str, Any]:
    """On the real control plane (bench.kpo_real): for each task length, the modes side by
    side in one window (one namespace each), or one at a time without `concurrent`."""
    from bench.__main__ import machine
    from bench.kpo_real import running_controller_real, running_real_cluster

    results: dict[str, Any] = {
        "benchmark": "kpo-real",
        "cluster": "real",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "concurrent": concurrent,
        "versions": _versions(),
        "runs": [],
    }
    groups = [modes] if concurrent else [[m] for m in modes]
    with _workdir(keep, "kpo-bench-real-") as tmp:
        workdir = Path(tmp)
        with running_real_cluster(workdir) as cluster:
            results["versions"]["kube-apiserver"] = cluster.server_version
            cluster.write_kubeconfig(workdir / "kubeconfig")
            with running_controller_real(cluster, workdir / "controller.log") as controller:
                results["controller_idle"] = _idle(cluster, controller.pid)
                print(f"controller idle: {results['controller_idle']}", flush=True)
                for seconds in lengths:
                    run: dict[str, Any] = {"seconds": seconds, "modes": []}
                    for group in groups:
                        for result in run_group(cluster, controller.pid, group, seconds, workdir):
                            run["modes"].append(result)
                            print(f"{seconds:g} s {_summary_line(result)}", flush=True)
                    add_ratios(run)
                    results["runs"].append(run)
    add_length_figures(results)
    return results


IDLE_SECONDS = 30.0


def _idle(cluster: Any, pid: int) -> dict[str, Any]:
    """The controller's CPU and requests with no TaskRun, before the first window."""
    cpu0, started = sample(pid).cpu_seconds, time.time()
    time.sleep(IDLE_SECONDS)
    cpu, ended = sample(pid).cpu_seconds - cpu0, time.time()
    requests = [
        r
        for r in cluster.requests.records
        if started <= r.started <= ended and _side(r.user_agent) == "controller"
    ]
    return {
        "seconds": round(ended - started, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_per_minute": round(cpu * 60 / (ended - started), 3),
        "requests": len(requests),
    }


def add_length_figures(results: dict[str, Any]) -> None:
    """Requests per task by length, and the target at the longest task: TaskRunOperator
    deferrable (controller included) against KPO deferrable, at least TARGET_RATIO x."""
    by_length = {run["seconds"]: {m["mode"]: m for m in run["modes"]} for run in results["runs"]}
    lengths = sorted(by_length)
    results["requests_by_length"] = {
        mode: {
            f"{s:g}": by_length[s][mode]["requests"]["total"]
            for s in lengths
            if mode in by_length[s]
        }
        for mode in MODES
        if any(mode in by_length[s] for s in lengths)
    }
    if not lengths:
        return
    longest = by_length[lengths[-1]]
    ref, target = longest.get(REFERENCE), longest.get("taskrun-deferrable")
    if ref and target and target["requests"]["total"]:
        ratio = ref["requests"]["total"] / target["requests"]["total"]
        results["target_30x"] = {
            "seconds": lengths[-1],
            "kpo_deferrable": ref["requests"]["total"],
            "taskrun_deferrable": target["requests"]["total"],
            "ratio": round(ratio, 2),
            "ratio_airflow_only": round(ref["requests"]["total"] / target["requests"]["airflow"], 2)
            if target["requests"]["airflow"]
            else None,
            "met": ratio >= TARGET_RATIO,
            # What 30x would allow, and what the TaskRun spends beyond it.
            "allowed": round(ref["requests"]["total"] / TARGET_RATIO, 2),
        }
        # Events (the controller's Created/Succeeded posts and its read of the pod's
        # Events for status.warnings) are the part of the floor a cluster can do without.
        events = sum(
            v for k, v in target["controller_requests_by_kind"].items() if " events" in f" {k}"
        )
        rest = target["requests"]["total"] - events
        results["target_30x"]["controller_event_requests"] = events
        results["target_30x"]["ratio_without_events"] = (
            round(ref["requests"]["total"] / rest, 2) if rest else None
        )
        if len(lengths) > 1:
            # KPO deferrable grows linearly with the task (a poll every 2 s); the TaskRun's
            # count at the longest task stands for its floor.
            first = by_length[lengths[0]].get(REFERENCE)
            if first and lengths[-1] > lengths[0]:
                rate = (ref["requests"]["total"] - first["requests"]["total"]) / (
                    lengths[-1] - lengths[0]
                )
                base = first["requests"]["total"] - rate * lengths[0]
                results["target_30x"]["kpo_deferrable_requests_per_minute"] = round(rate * 60, 2)
                if rate > 0:
                    results["target_30x"]["met_from_seconds"] = round(
                        max(0.0, (TARGET_RATIO * target["requests"]["total"] - base) / rate)
                    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in (
        "apache-airflow",
        "apache-airflow-providers-cncf-kubernetes",
        "kubernetes",
        "kubernetes_asyncio",
        "kopf",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def _summary_line(m: dict[str, Any]) -> str:
    req, cpu = m["requests"], m["cpu_seconds"]
    state = "ok" if m["ok"] else f"FAILED ({m['error']})"
    return (
        f"{m['mode']}: {state}; requests airflow {req['airflow']} + controller "
        f"{req['controller']} = {req['total']}; waiting CPU {cpu['airflow_waiting']:.2f} s "
        f"({cpu['waiting_role']}) + controller {_cpu(cpu['controller'])} s; "
        f"pod log lines in task log {m['pod_log_lines_in_task_log']}/{m['pod_log_lines_expected']}"
    )


def _cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}x"


def markdown_section(results: dict[str, Any]) -> str:
    """The docs/benchmarks.md section for this benchmark (markdown, ends with a newline)."""
    seconds = results["seconds"]
    modes = results["modes"]
    lines = [
        f"## Side by side with KubernetesPodOperator ({seconds:g} s task)",
        "",
        f"One devcluster, one controller, the same task run {len(modes)} times, one mode at a "
        f"time: "
        f"a pod that runs {seconds:g} s and prints a line every 5 s, `get_logs=True`, pod "
        f"deleted at the end, default intervals. The Airflow side is the real "
        f"KubernetesPodOperator / KubernetesPodTrigger (cncf.kubernetes provider) and "
        f"TaskRunOperator / TaskRunTrigger, called in a worker subprocess with a minimal "
        f"context; deferrable = `execute()` until TaskDeferred, the trigger serialized, "
        f"rebuilt and run on asyncio until its first event (as the triggerer does), then the "
        f"resume method on a fresh operator. Requests are counted by devcluster and "
        f"attributed by user agent; a watch or a followed log counts as one request however "
        f"long it stays open. Waiting CPU is the worker's CPU for a blocking task and the "
        f"triggerer's for a deferrable one (warm process: imports and the first connection "
        f"lookup are paid before the clock starts); the controller's CPU is read from /proc "
        f"over the task's window. Ratios are KPO deferrable divided by the row.",
        "",
        "| mode | requests: Airflow | requests: controller | requests: total "
        "| fewer than KPO deferrable | waiting CPU s: Airflow | CPU s: controller "
        "| waiting CPU s: total | less CPU than KPO deferrable |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in modes:
        req, cpu = m["requests"], m["cpu_seconds"]
        with_controller = m["mode"].startswith("taskrun")
        label = m["label"] + ("" if m["ok"] else " (FAILED)")
        ctl_cpu = f"{cpu['controller']:.2f}" if with_controller else "—"
        lines.append(
            f"| {label} | {req['airflow']} | {req['controller'] if with_controller else '—'} "
            f"| {req['total']} | {_ratio(m.get('ratio_requests'))} "
            f"| {cpu['airflow_waiting']:.2f} ({cpu['waiting_role']}) "
            f"| {ctl_cpu} "
            f"| {cpu['waiting_total']:.2f} | {_ratio(m.get('ratio_waiting_cpu'))} |"
        )
    lines.append("")
    target = results.get("target_10x_fewer_requests")
    if target:
        verdict = "met" if target["met"] else "missed"
        lines += [
            f"Target *at least 10x fewer API requests than KPO deferrable*: **{verdict}** — "
            f"{target['ratio']:.1f}x counting the controller's requests for the task, "
            f"{_ratio(target['ratio_airflow_only'])} counting the Airflow side alone.",
            "",
        ]
        crossover = target.get("ten_x_at_seconds")
        if crossover:
            lines += [
                f"KPO deferrable's trigger polls the pod every `poll_interval` (2 s): "
                f"{target['kpo_trigger_requests_per_second']:.2f} requests/s here; "
                f"TaskRunTrigger holds one watch and resumes it (one request) when the "
                f"server ends it ({target['taskrun_trigger_requests_per_second']:.3f} "
                f"requests/s). "
                f"Extrapolating both linearly from this run, the 10x ratio is reached for "
                f"tasks longer than about {crossover:.0f} s.",
                "",
            ]
    held = [
        f"{m['label'].split(' +')[0]} {p['rss_mb']:.0f} MB"
        for m in modes
        if m["mode"].endswith("blocking")
        for p in m["phases"]
        if p.get("rss_mb")
    ]
    if held:
        lines += [
            f"CPU is not what a blocking task costs: it holds a worker slot and its process "
            f"for the whole {seconds:g} s (worker RSS at the end: {', '.join(held)}); a "
            f"deferrable task frees the slot while its trigger waits in the triggerer.",
            "",
        ]
    window, shared, _ = _shared(modes, bool(results.get("concurrent")))
    idle = [m for m in modes if m["mode"].startswith("kpo")]
    idle_cpu = sum(m["cpu_seconds"]["controller"] or 0.0 for m in idle)
    idle_secs = sum(m["window_seconds"] for m in idle)
    lines += [
        f"The controller column counts the controller's requests in the task's namespace. "
        f"Its cluster-wide traffic (watch re-opens, discovery) is shared by every TaskRun and "
        f"left out: {shared} requests over the {window:.0f} s of the {len(modes)} windows. "
        f"Idle, "
        f"over the KPO windows ({idle_secs:.0f} s, no TaskRun), the controller used "
        f"{idle_cpu:.2f} CPU s; that baseline is inside its CPU column.",
        "",
        "Where the requests go:",
        "",
    ]
    lines += [_where_requests_go(m["label"], m) for m in modes]
    lines.append("")
    shown = [
        f"{m['label'].split(' +')[0]} {m['pod_log_lines_in_task_log']}/"
        f"{m['pod_log_lines_expected']}"
        for m in modes
    ]
    lines += [f"Pod log lines that reached the task log: {', '.join(shown)}.", ""]
    versions = ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())
    command = f"make bench-kpo (.venv-airflow3/bin/python -m bench.kpo --seconds {seconds:g})"
    if [m["mode"] for m in modes] != list(MODES):
        command += f" --modes {','.join(m['mode'] for m in modes)}"
    out = results.get("out", "bench/results/kpo.json")
    if out != "bench/results/kpo.json":
        command += f" --out {out}"
    lines += [
        f"Versions: {versions}. Reproduce: `{command}` (raw figures in `{out}`).",
        "",
    ]
    return "\n".join(lines)


SECTION = "## KubernetesPodOperator on the real API server"


def _shared(modes: list[dict[str, Any]], concurrent: bool) -> tuple[float, int, Counter[str]]:
    """Seconds of window, and the controller's cluster-wide requests in them: side by side,
    the modes share one window and each saw the same requests."""
    windows = modes[:1] if concurrent else modes
    kinds: Counter[str] = Counter()
    for m in windows:
        kinds.update(m.get("controller_shared_requests_by_kind") or {})
    seconds = sum(m["window_seconds"] for m in windows)
    return seconds, sum(m["requests"].get("controller_shared", 0) for m in windows), kinds


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _cells(
    mode: str, by_length: list[dict[str, Any]], cell: Callable[[dict[str, Any]], str]
) -> str:
    """A table row's cells for `mode`, one per task length: `cell` of its figures, or a dash
    where the mode did not run at that length."""
    return " | ".join(cell(b[mode]) if mode in b else "—" for b in by_length)


def _handover_lines(m: dict[str, Any] | None, target: dict[str, Any]) -> list[str]:
    """Why the operator read the pod's log (and acknowledged it) instead of taking it from
    the TaskRun's status, and what the task would cost if its log fit there."""
    if not m or not m.get("ok"):
        return []
    airflow = m.get("airflow_requests_by_kind") or {}
    handover = airflow.get("get pods/log", 0) + airflow.get("patch taskruns", 0)
    if not handover:
        return []
    without = target["taskrun_deferrable"] - handover
    return [
        f"The task's log ({m.get('pod_log_lines_expected')} lines) is longer than the status "
        "keeps (`--log-tail-lines`, default 100; 16 KiB), so the operator read it from the "
        "pod and acknowledged it (get pods/log, patch taskruns): "
        f"{handover} requests. A log that fits rides in the status and costs neither (the "
        f"shorter task above); this task would then take {without}: "
        f"{_ratio(target['kpo_deferrable'] / without if without else None)}.",
        "",
    ]


def _requests_cell(m: dict[str, Any]) -> str:
    req = m["requests"]
    failed = "" if m["ok"] else " (FAILED)"
    if m["mode"].startswith("taskrun"):
        return f"{req['airflow']} + {req['controller']} = **{req['total']}**{failed}"
    return f"**{req['total']}**{failed}"


def _cpu_cell(m: dict[str, Any]) -> str:
    cpu = m["cpu_seconds"]
    text = f"{cpu['airflow_waiting']:.2f} ({cpu['waiting_role']})"
    if m["mode"].startswith("taskrun"):
        text += f" + {_cpu(cpu['controller'])} = {cpu['waiting_total']:.2f}"
    return text


def _where_requests_go(title: str, m: dict[str, Any]) -> str:
    """One item of a "Where the requests go" list (devcluster's and the real cluster's): a
    mode's requests by verb and resource on each side, then its phases."""
    text = f"- {title}: Airflow: {_kinds(m['airflow_requests_by_kind'])}"
    if m["mode"].startswith("taskrun"):
        text += f"; controller: {_kinds(m['controller_requests_by_kind'])}"
    phases = "; ".join(
        f"{p['name']} {p['requests']} requests, {p['cpu_seconds']:.2f} CPU s, {p['seconds']:.1f} s"
        for p in m["phases"]
    )
    return f"{text}. Phases: {phases}."


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    """What `b` (a longer task) sent beyond `a`, by verb and resource, both sides."""

    def both(m: dict[str, Any]) -> Counter[str]:
        out = Counter(m["airflow_requests_by_kind"])
        if m["mode"].startswith("taskrun"):
            out.update({f"controller {k}": v for k, v in m["controller_requests_by_kind"].items()})
        return out

    more, fewer = both(b), both(a)
    more.subtract(fewer)
    parts = [f"{v:+d} {k}" for k, v in sorted(more.items()) if v]
    return ", ".join(parts) or "the same requests"


def devcluster_counts(
    dev: dict[str, Any] | None, by_length: list[dict[str, Any]], lengths: list[float]
) -> str:
    """One sentence setting devcluster's counts (bench/results/kpo.json) beside the real
    API server's for the same task length, or "" when there is nothing to compare."""
    if not dev or dev.get("seconds") not in lengths:
        return ""
    real = by_length[lengths.index(dev["seconds"])]
    parts, same = [], []
    for m in dev.get("modes", []):
        r = real.get(m["mode"])
        if r is None:
            continue
        parts.append(
            f"{m['label'].split(' +')[0]} {m['requests']['total']} (real {r['requests']['total']})"
        )
        both = (m["airflow_requests_by_kind"], m.get("controller_requests_by_kind"))
        if both == (r["airflow_requests_by_kind"], r.get("controller_requests_by_kind")):
            same.append(m["label"].split(" +")[0])
    if not parts:
        return ""
    return (
        f"On devcluster ({dev.get('date', '')}, `bench/results/kpo.json`, one mode at a time) "
        f"the {dev['seconds']:g} s task took: {', '.join(parts)}; the same requests by verb "
        f"and resource for: {', '.join(same) or 'none'}."
    )


def markdown_section_real(results: dict[str, Any], devcluster: dict[str, Any] | None = None) -> str:
    """The docs/benchmarks.md section for `--cluster real` (markdown, ends with a newline);
    `devcluster`: bench/results/kpo.json, set beside it for the same task length."""
    runs = sorted(results["runs"], key=lambda r: r["seconds"])
    lengths = [r["seconds"] for r in runs]
    by_length = [{m["mode"]: m for m in r["modes"]} for r in runs]
    modes = [m for m in MODES if any(m in b for b in by_length)]
    label = {m: LABELS[m] for m in modes}
    head = " / ".join(f"{s:g} s" for s in lengths)
    side_by_side = (
        "the four modes side by side in one window, each in its own namespace"
        if results.get("concurrent")
        else "one mode at a time"
    )
    idle = results.get("controller_idle") or {}
    versions = ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())
    lines = [
        SECTION,
        "",
        f"Measured {results['date']} on {results.get('machine', 'this machine')}. "
        f"kube-apiserver, etcd, kube-controller-manager and kube-scheduler "
        f"(realcluster/, built from Go modules) with the node agent playing the pod: it "
        f"runs {head} and prints a line every 5 s; `get_logs=True`, pod deleted at the end, "
        f"default intervals, {side_by_side}. The Airflow side is run as on devcluster (the "
        f"section below: the real KubernetesPodOperator / KubernetesPodTrigger and "
        f"TaskRunOperator / TaskRunTrigger in worker subprocesses, deferrable = execute "
        f"until TaskDeferred, the trigger rebuilt and run to its first event, then the "
        f"resume method); the controller runs as deploy/base's ServiceAccount. Requests come "
        f"from kube-apiserver's audit log (Metadata level, every request): the worker's "
        f"clients are told apart by their user agent (`kpo-bench/<mode>`), the controller's "
        f"by theirs (`kopf`, `taskrun-controller`) in the task's namespace; a watch or a "
        f"followed log counts once however long it stays open. Totals count the controller "
        f"for the TaskRun modes.",
        "",
        f"| mode | {' | '.join(f'{s:g} s: Airflow + controller = total' for s in lengths)} "
        f"| KPO deferrable / row at {lengths[-1]:g} s |",
        "|---|" + "---:|" * (len(lengths) + 1),
    ]
    for mode in modes:
        last = by_length[-1].get(mode)
        lines.append(
            f"| {label[mode]} | {_cells(mode, by_length, _requests_cell)} "
            f"| {_ratio(last.get('ratio_requests') if last else None)} |"
        )
    lines.append("")
    target = results.get("target_30x")
    if target:
        verdict = "met" if target["met"] else "missed"
        lines += [
            f"Target *at least {TARGET_RATIO}x fewer requests than KPO deferrable for a "
            f"{target['seconds']:g} s task, controller included*: **{verdict}** — "
            f"{target['kpo_deferrable']} against {target['taskrun_deferrable']}, "
            f"{target['ratio']:.1f}x ({_ratio(target['ratio_airflow_only'])} counting the "
            f"Airflow side alone).",
            "",
        ]
        if not target["met"]:
            m = by_length[-1]["taskrun-deferrable"]
            floor = _kinds(
                Counter(m["airflow_requests_by_kind"])
                + Counter(
                    {f"controller {k}": v for k, v in m["controller_requests_by_kind"].items()}
                )
            )
            lines += [
                f"What holds it back: {TARGET_RATIO}x would allow {target['allowed']:.1f} "
                f"requests for the whole task; TaskRunOperator deferrable sent "
                f"{target['taskrun_deferrable']}: {floor}.",
                "",
            ]
        if target.get("controller_event_requests"):
            lines += [
                f"Of those, {target['controller_event_requests']} are Events (the controller "
                f"posts one when the pod runs and one at the end; it reads the pod's only after "
                f"a failure): without them the ratio is "
                f"{_ratio(target.get('ratio_without_events'))}.",
                "",
            ]
        lines += _handover_lines(by_length[-1].get("taskrun-deferrable"), target)
        if target.get("kpo_deferrable_requests_per_minute") is not None:
            met_from = target.get("met_from_seconds")
            lines += [
                f"KPO deferrable grows by {target['kpo_deferrable_requests_per_minute']:.1f} "
                f"requests a minute of task (its trigger polls the pod every 2 s); "
                + (
                    f"at this TaskRun floor, {TARGET_RATIO}x is reached for tasks of "
                    f"{met_from / 60:.1f} min and longer."
                    if met_from is not None
                    else "the TaskRun's count does not grow."
                ),
                "",
            ]
    if len(runs) > 1:
        parts = []
        for mode in modes:
            short, long = by_length[0].get(mode), by_length[-1].get(mode)
            if short is None or long is None:
                continue
            parts.append(
                f"{label[mode].split(' +')[0]} {short['requests']['total']} -> "
                f"{long['requests']['total']} ({_diff(short, long)})"
            )
        timeout = next(
            (
                m.get("trigger_watch_timeout_seconds")
                for b in by_length
                for m in b.values()
                if m.get("trigger_watch_timeout_seconds")
            ),
            None,
        )
        lines += [
            f"From {lengths[0]:g} s to {lengths[-1]:g} s, requests per task: "
            + "; ".join(parts)
            + "."
            + (
                f" A TaskRun's count does not follow the task's length but for its watches: "
                f"the operator and TaskRunTrigger ask the API server to end a watch after "
                f"{timeout:g} s (WATCH_TIMEOUT_SECONDS) and resume it from the last "
                f"resourceVersion, one request per {timeout / 60:g} minutes of waiting."
                if timeout
                else ""
            ),
            "",
        ]
    dev = devcluster_counts(devcluster, by_length, lengths)
    if dev:
        lines += [dev, ""]
    lines += [
        "| mode | "
        + " | ".join(f"{s:g} s: waiting CPU s, Airflow + controller" for s in lengths)
        + " |",
        "|---|" + "---:|" * len(lengths),
    ]
    lines += [f"| {label[mode]} | {_cells(mode, by_length, _cpu_cell)} |" for mode in modes]
    lines += [
        "",
        "The controller's CPU is read from /proc over the window and split evenly between "
        "the TaskRuns in it (the same work for the controller)"
        + (
            f"; idle, before the first window, it used {idle['cpu_seconds']:.2f} CPU s in "
            f"{idle['seconds']:.0f} s ({idle['cpu_seconds_per_minute']:.2f} s a minute, "
            f"{idle['requests']} requests), which is inside those figures."
            if idle
            else "."
        ),
        "",
        "Where the requests go:",
        "",
    ]
    lines += [
        _where_requests_go(f"{s:g} s, {label[mode]}", b[mode])
        for s, b in zip(lengths, by_length, strict=True)
        for mode in modes
        if mode in b
    ]
    lines.append("")
    other = [
        f"{s:g} s {label[mode].split(' +')[0]} {sum(m['requests']['other'] for m in [b[mode]])}"
        for s, b in zip(lengths, by_length, strict=True)
        for mode in modes
        if mode in b
    ]
    shared = [_shared(list(b.values()), bool(results.get("concurrent"))) for b in by_length if b]
    shared_text = "; ".join(
        f"{n} in {sec:.0f} s ({_kinds(dict(kinds))})" for sec, n, kinds in shared
    )
    shown = [
        f"{s:g} s {label[mode].split(' +')[0]} {b[mode]['pod_log_lines_in_task_log']}/"
        f"{b[mode]['pod_log_lines_expected']}"
        for s, b in zip(lengths, by_length, strict=True)
        for mode in modes
        if mode in b
    ]
    doubled = [
        f"{s:g} s {label[mode].split(' +')[0]}"
        for s, b in zip(lengths, by_length, strict=True)
        for mode in modes
        if mode in b and b[mode]["pod_log_lines_in_task_log"] > b[mode]["pod_log_lines_expected"]
    ]
    doubled_text = (
        f" More lines than the pod wrote ({', '.join(doubled)}): when the followed log ends "
        f"while the pod still shows the container running, KPO reads the log's last second "
        f"again (it warns that lines of the last second may be duplicated). In a re-run "
        f"kept with `--workdir`, the audit log shows the stream ending with the container "
        f"and KPO's pod read 1 ms later, 3 ms before the node's status patch: a second log "
        f"read and the last line twice. A kubelet's status lags a container's exit as well; "
        f"devcluster, which writes the status in-process, never showed it (12/12)."
        if doubled
        else ""
    )
    lines += [
        f"Not counted above: the rest of the cluster in each task's namespace (scheduler, "
        f"node agent, controller manager: the pod's own life, about the same for every mode): "
        f"{', '.join(other)} requests. The controller's cluster-wide requests, shared by every "
        f"TaskRun it runs meanwhile (kopf's watch re-opens, discovery): {shared_text}.",
        "",
        f"Pod log lines that reached the task log: {', '.join(shown)}.{doubled_text}",
        "",
    ]
    out = results.get("out", "bench/results/kpo-real.json")
    lines += [
        f"Versions: {versions}. Reproduce: `make bench-kpo-real` (.venv-airflow3/bin/python "
        f"-m bench.kpo --cluster real --seconds {','.join(f'{s:g}' for s in lengths)}; raw "
        f"figures in `{out}`).",
        "",
    ]
    return "\n".join(lines)


def _devcluster_results() -> dict[str, Any] | None:
    path = RESULTS / "kpo.json"
    return json.loads(path.read_text()) if path.exists() else None


def update_docs(section: str, docs: Path = DOCS) -> None:
    """Replace the section in docs/benchmarks.md, or put it before the devcluster figures
    (`## On devcluster`, else the first `## Targets`) where it is not there yet."""
    text = docs.read_text()
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        nxt = rest.find("\n## ")
        tail = rest[nxt + 1 :] if nxt >= 0 else ""
        text = head + section.rstrip("\n") + "\n\n" + tail
    else:
        anchor = text.find("\n## On devcluster")
        if anchor < 0:
            anchor = text.find("\n## Targets")
        at = anchor + 1 if anchor >= 0 else len(text)
        text = text[:at] + section.rstrip("\n") + "\n\n" + text[at:]
    docs.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kpo")
    parser.add_argument(
        "--cluster",
        choices=("devcluster", "real"),
        default="devcluster",
        help="devcluster (the simulator, default) or real (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler and the node agent; requests from the "
        "audit log)",
    )
    parser.add_argument(
        "--seconds",
        default=None,
        help="how long the pod runs; with --cluster real a comma-separated list of lengths, "
        "run one after the other (default: 60 on devcluster, 60,600 on real)",
    )
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument(
        "--concurrent",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the modes side by side in one window, one namespace each (default on real; "
        "one at a time on devcluster)",
    )
    parser.add_argument("--out", default=None, help="default bench/results/kpo[-real].json")
    parser.add_argument("--markdown", action="store_true", help="print the markdown section")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help=f"write the real section into {DOCS.relative_to(ROOT)} (--cluster real)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="--cluster real: keep the control plane's logs, audit log and the task logs here",
    )
    parser.add_argument(
        "--render", metavar="JSON", help="no run: render (and --update-docs) from a results file"
    )
    args = parser.parse_args()
    if args.render:
        loaded = json.loads(Path(args.render).read_text())
        real_results = loaded.get("cluster") == "real"
        if real_results:
            add_length_figures(loaded)  # derived figures, as this version computes them
        text = (
            markdown_section_real(loaded, _devcluster_results())
            if real_results
            else markdown_section(loaded)
        )
        print(text)
        if args.update_docs and real_results:
            update_docs(text)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")
    real = args.cluster == "real"
    try:
        lengths = [float(s) for s in (args.seconds or ("60,600" if real else "60")).split(",")]
    except ValueError:
        parser.error(f"--seconds: comma-separated numbers, got {args.seconds!r}")
    if not real and len(lengths) != 1:
        parser.error(f"--seconds: one length on devcluster, got {len(lengths)}")
    concurrent = real if args.concurrent is None else args.concurrent
    default_out = RESULTS / ("kpo-real.json" if real else "kpo.json")
    out = Path(args.out or default_out).resolve()
    if real:
        results = run_real(lengths, modes, concurrent, args.workdir)
    else:
        results = run(lengths[0], modes, concurrent)
    results["out"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    section = (
        markdown_section_real(results, _devcluster_results()) if real else markdown_section(results)
    )
    if args.markdown:
        print(section)
    if args.update_docs and real:
        update_docs(section)
        print(f"updated {DOCS}")
    oks = [m["ok"] for run in results.get("runs", [results]) for m in run["modes"]]
    return 0 if all(oks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
