"""Side by side with KubernetesPodOperator: API requests and waiting CPU for one task.

`python -m bench.kpo [--seconds 60]` (in the Airflow venv: it runs the real
cncf.kubernetes provider) starts one devcluster and the controller, then runs the same
task -- a pod that runs `--seconds` and prints a line every 5 s -- four times, one mode
at a time, each in its own namespace:

- KPO blocking, KPO deferrable (KubernetesPodOperator + KubernetesPodTrigger);
- TaskRunOperator blocking, TaskRunOperator deferrable (TaskRunTrigger), with the
  controller doing the pod work.

Each task runs in a subprocess (bench.kpo_worker) that plays the worker and the
triggerer and measures its own CPU per phase. API requests come from devcluster's
request log, by user agent: the worker's clients say `kpo-bench/<mode>`, the controller
says `kopf` / `taskrun-controller`. The controller's share is what it sent to the task's
namespace from the task's start until it has been quiet for SETTLE_QUIET s after the task
ended; its cluster-wide traffic (watch re-opens, discovery) is shared by all TaskRuns and
reported apart. The controller's CPU is read from /proc over the same window (the KPO
windows give its idle baseline).

Writes bench/results/kpo.json; `markdown_section(results)` renders it for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.cluster import ROOT, running_cluster, running_controller
from bench.kpo_worker import LOG_MARK, MODES, USER_AGENT_PREFIX
from bench.procstat import sample

RESULTS = ROOT / "bench" / "results"
CONTROLLER_AGENTS = ("kopf", "taskrun-controller")
REFERENCE = "kpo-deferrable"
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


def _settle(cluster: Any, since: float, namespace: str) -> float:
    """Wait until the controller sent nothing to `namespace` for SETTLE_QUIET s; returns
    the window end."""
    deadline = time.time() + SETTLE_MAX
    while time.time() < deadline:
        last = max(
            (
                r.started
                for r in cluster.requests.records
                if r.started >= since
                and r.namespace == namespace
                and _side(r.user_agent) == "controller"
            ),
            default=since,
        )
        if time.time() - max(last, since) >= SETTLE_QUIET:
            break
        time.sleep(0.25)
    return time.time()


def run_mode(
    cluster: Any, controller_pid: int, mode: str, seconds: float, workdir: Path
) -> dict[str, Any]:
    namespace = f"kpo-bench-{mode}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kubeconfig = workdir / "kubeconfig"
    out, log = workdir / f"{mode}.json", workdir / f"{mode}.log"
    env = {**os.environ, "AIRFLOW_HOME": str(workdir / "airflow-home")}
    env.pop("KUBECONFIG", None)
    go_file = workdir / f"{mode}.go"
    timeout = seconds * 4 + 180
    with open(log, "w") as log_fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.kpo_worker",
                "--mode",
                mode,
                "--kubeconfig",
                str(kubeconfig),
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
        try:
            # The window opens once the worker has loaded Airflow and built the operator.
            ready = Path(f"{go_file}.ready")
            deadline = time.monotonic() + 120
            while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            cpu0 = sample(controller_pid).cpu_seconds
            started = time.time()
            go_file.touch()
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    worker_ended = time.time()
    ended = _settle(cluster, started, namespace)
    cpu1 = sample(controller_pid).cpu_seconds
    task = json.loads(out.read_text()) if out.exists() else {"ok": False, "phases": []}
    if proc.returncode and not task.get("error"):
        task["error"] = f"worker exited with {proc.returncode}"
    task_log = log.read_text(errors="replace")

    records = [r for r in cluster.requests.records if started <= r.started <= ended]
    by_side: dict[str, list[Any]] = {"airflow": [], "controller": [], "shared": [], "other": []}
    for record in records:
        side = _side(record.user_agent)
        if side == "controller" and record.namespace != namespace:
            # Cluster-wide watch re-opens and discovery: shared by every TaskRun, not this one's.
            side = "shared"
        by_side[side].append(record)
    phases = task.get("phases", [])
    airflow_by_phase = {
        p["name"]: sum(1 for r in by_side["airflow"] if p["started"] <= r.started <= p["ended"])
        for p in phases
    }
    waiting_role = "worker" if mode.endswith("blocking") else "triggerer"
    airflow_cpu = sum(p["cpu_seconds"] for p in phases)
    waiting_cpu = sum(p["cpu_seconds"] for p in phases if p["role"] == waiting_role)
    controller_cpu = cpu1 - cpu0
    uses_controller = mode.startswith("taskrun")
    result = {
        "mode": mode,
        "label": LABELS[mode],
        "ok": bool(task.get("ok")),
        "error": task.get("error"),
        "seconds": seconds,
        "window_seconds": round(ended - started, 3),
        "task_seconds": round(worker_ended - started, 3),
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
        "other_user_agents": sorted({r.user_agent for r in by_side["other"]}),
        "cpu_seconds": {
            "airflow": round(airflow_cpu, 3),
            "airflow_waiting": round(waiting_cpu, 3),
            "waiting_role": waiting_role,
            "controller": round(controller_cpu, 3),
            "waiting_total": round(waiting_cpu + (controller_cpu if uses_controller else 0), 3),
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


def run(seconds: float, modes: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "kpo",
        "date": time.strftime("%Y-%m-%d"),
        "seconds": seconds,
        "versions": _versions(),
        "modes": [],
    }
    with tempfile.TemporaryDirectory(prefix="kpo-bench-") as tmp:
        workdir = Path(tmp)
        with running_cluster() as cluster, running_controller(cluster) as controller:
            cluster.write_kubeconfig(workdir / "kubeconfig")
            time.sleep(1.0)  # let the controller finish starting up before the first window
            for mode in modes:
                result = run_mode(cluster, controller.pid, mode, seconds, workdir)
                results["modes"].append(result)
                print(_summary_line(result), flush=True)
    add_ratios(results)
    return results


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
        f"({cpu['waiting_role']}) + controller {cpu['controller']:.2f} s; "
        f"pod log lines in task log {m['pod_log_lines_in_task_log']}/{m['pod_log_lines_expected']}"
    )


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
    window = sum(m["window_seconds"] for m in modes)
    shared = sum(m["requests"].get("controller_shared", 0) for m in modes)
    idle = [m for m in modes if m["mode"].startswith("kpo")]
    idle_cpu = sum(m["cpu_seconds"]["controller"] for m in idle)
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
    for m in modes:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(m["airflow_requests_by_kind"].items()))
        text = f"- {m['label']}: Airflow: {parts or 'none'}"
        if m["mode"].startswith("taskrun"):
            ctl = [f"{k} {v}" for k, v in sorted(m["controller_requests_by_kind"].items())]
            text += f"; controller: {', '.join(ctl) or 'none'}"
        phases = "; ".join(
            f"{p['name']} {p['requests']} requests, {p['cpu_seconds']:.2f} CPU s, "
            f"{p['seconds']:.1f} s"
            for p in m["phases"]
        )
        lines.append(f"{text}. Phases: {phases}.")
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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kpo")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the pod runs")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--out", default=str(RESULTS / "kpo.json"))
    parser.add_argument("--markdown", action="store_true", help="print the markdown section")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")
    results = run(args.seconds, modes)
    out = Path(args.out).resolve()
    results["out"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    if args.markdown:
        print(markdown_section(results))
    return 0 if all(m["ok"] for m in results["modes"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
