"""bench.kpo's accounting: whose request is whose when the four modes share one window, the
controller's CPU split, the length figures and the target, and where the docs section goes."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest

from bench import kpo
from testcluster.audit import AuditRecord

NS = "kpo-60s-taskrun-deferrable"
OTHER_NS = "kpo-60s-kpo-deferrable"
AGENT = "kpo-bench/taskrun-deferrable OpenAPI-Generator/36.0.3/python"


def rec(user_agent: str, namespace: str, verb: str = "get", resource: str = "pods") -> AuditRecord:
    return AuditRecord(
        verb=verb,
        group="",
        version="v1",
        resource=resource,
        subresource="",
        namespace=namespace,
        name="x",
        code=200,
        user_agent=user_agent,
        started=100.5,
        duration=0.0,
        user="someone",
    )


def worker(tmp_path: Path, mode: str = "taskrun-deferrable", namespace: str = NS) -> kpo.Worker:
    out = tmp_path / f"{mode}.json"
    out.write_text(
        json.dumps(
            {
                "ok": True,
                "phases": [
                    {
                        "name": "triggerer",
                        "role": "triggerer",
                        "started": 100.0,
                        "ended": 101.0,
                        "cpu_seconds": 0.5,
                    }
                ],
            }
        )
    )
    log = tmp_path / f"{mode}.log"
    log.write_text("")
    proc: Any = types.SimpleNamespace(returncode=0)
    return kpo.Worker(mode, namespace, 60.0, proc, out, log, tmp_path / "go", ended=101.0)


@pytest.mark.parametrize(
    ("record", "side"),
    [
        (rec(AGENT, NS), "airflow"),
        # Another mode's worker, even in this namespace, is not this task's.
        (rec("kpo-bench/kpo-deferrable OpenAPI-Generator/36.0.3/python", NS), None),
        # A mode whose name is a prefix of another's must not take its requests.
        (rec("kpo-bench/taskrun-deferrable-x python", NS), None),
        (rec("kopf/1.45.2", NS, "patch", "taskruns"), "controller"),
        (rec("taskrun-controller/0.1", NS, "create", "pods"), "controller"),
        (rec("taskrun-controller/0.1", OTHER_NS, "create", "pods"), None),
        (rec("kopf/1.45.2", "", "watch", "taskruns"), "controller_shared"),
        (rec("kube-scheduler/v1.37.2", NS, "create", "pods"), "other"),
        (rec("kube-scheduler/v1.37.2", OTHER_NS, "create", "pods"), None),
    ],
)
def test_each_request_goes_to_one_side_of_one_mode(
    tmp_path: Path, record: AuditRecord, side: str | None
) -> None:
    result = kpo.summarize(worker(tmp_path), [record], 100.0, 102.0, {NS, OTHER_NS}, 0.0, 1)
    counts = {k: v for k, v in result["requests"].items() if k != "total" and v}
    assert counts == ({side: 1} if side else {})


@pytest.mark.parametrize(
    ("mode", "taskruns", "controller", "waiting_total"),
    [
        ("taskrun-deferrable", 2, 0.3, 0.8),  # half the window's 0.6 s, plus the trigger's 0.5
        ("taskrun-deferrable", 1, 0.6, 1.1),
        ("kpo-deferrable", 2, None, 0.5),  # the controller worked for the TaskRuns, not it
        ("kpo-deferrable", 0, 0.6, 0.5),  # alone: the controller's idle cost, not KPO's
    ],
)
def test_the_controller_cpu_is_split_between_the_taskruns_of_the_window(
    tmp_path: Path, mode: str, taskruns: int, controller: float | None, waiting_total: float
) -> None:
    result = kpo.summarize(worker(tmp_path, mode), [], 100.0, 102.0, {NS}, 0.6, taskruns)
    assert result["cpu_seconds"]["controller"] == controller
    assert result["cpu_seconds"]["waiting_total"] == waiting_total


def mode_result(mode: str, airflow: int, controller: int = 0) -> dict[str, Any]:
    total = airflow + (controller if mode.startswith("taskrun") else 0)
    return {
        "mode": mode,
        "label": kpo.LABELS[mode],
        "ok": True,
        "requests": {
            "airflow": airflow,
            "controller": controller,
            "controller_shared": 0,
            "other": 9,
            "total": total,
        },
        "airflow_requests_by_kind": {"get pods": airflow},
        "controller_requests_by_kind": {"create pods": controller} if controller else {},
        "cpu_seconds": {
            "airflow_waiting": 0.1,
            "waiting_role": "triggerer",
            "controller": 0.02 if controller else None,
            "waiting_total": 0.12,
        },
        "phases": [],
        "window_seconds": 61.0,
        "controller_shared_requests_by_kind": {},
        "pod_log_lines_in_task_log": 12,
        "pod_log_lines_expected": 12,
    }


@pytest.mark.parametrize(
    ("kpo_requests", "taskrun", "met", "ratio"),
    [(360, (4, 8), True, 30.0), (359, (4, 8), False, 29.92), (60, (4, 8), False, 5.0)],
)
def test_the_target_is_judged_at_the_longest_task_controller_included(
    kpo_requests: int, taskrun: tuple[int, int], met: bool, ratio: float
) -> None:
    results: dict[str, Any] = {
        "runs": [
            {
                "seconds": 600.0,
                "modes": [
                    mode_result("kpo-deferrable", kpo_requests),
                    mode_result("taskrun-deferrable", *taskrun),
                ],
            },
            {
                "seconds": 60.0,
                "modes": [
                    mode_result("kpo-deferrable", 40),
                    mode_result("taskrun-deferrable", 4, 8),
                ],
            },
        ]
    }
    kpo.add_length_figures(results)
    target = results["target_30x"]
    assert (target["seconds"], target["met"], target["ratio"]) == (600.0, met, ratio)
    assert target["ratio_airflow_only"] == round(kpo_requests / taskrun[0], 2)
    assert results["requests_by_length"]["taskrun-deferrable"] == {"60": 12, "600": 12}


def test_the_section_goes_before_the_devcluster_figures_and_is_replaced_in_place(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nintro\n\n## Targets\n\nfigures\n")
    kpo.update_docs(f"{kpo.SECTION}\n\nfirst\n", docs)
    once = docs.read_text()
    assert once == f"# Benchmarks\n\nintro\n\n{kpo.SECTION}\n\nfirst\n\n## Targets\n\nfigures\n"
    kpo.update_docs(f"{kpo.SECTION}\n\nsecond\n", docs)
    assert docs.read_text() == once.replace("first", "second")


def test_what_holds_the_target_back_is_measured_from_both_lengths() -> None:
    taskrun = mode_result("taskrun-deferrable", 4, 8)
    taskrun["controller_requests_by_kind"] = {
        "create events": 2,
        "list events": 1,
        "create pods": 5,
    }
    results: dict[str, Any] = {
        "runs": [
            {"seconds": 60.0, "modes": [mode_result("kpo-deferrable", 40), taskrun]},
            # 30 more requests a minute: 40 + 9 * 30 = 310 at 600 s.
            {"seconds": 600.0, "modes": [mode_result("kpo-deferrable", 310), taskrun]},
        ]
    }
    kpo.add_length_figures(results)
    target = results["target_30x"]
    assert target["met"] is False
    assert (target["controller_event_requests"], target["ratio_without_events"]) == (3, 34.44)
    assert target["kpo_deferrable_requests_per_minute"] == 30.0
    # 30 x 12 = 360 requests of KPO deferrable: 40 + (t - 60) / 2 = 360 at t = 700 s.
    assert target["met_from_seconds"] == 700
    assert "11.7 min" in kpo.markdown_section_real(
        {**results, "date": "2026-12-05", "concurrent": True}
    )


def test_devcluster_is_set_beside_the_real_server_at_the_same_length_only() -> None:
    real = {"taskrun-deferrable": mode_result("taskrun-deferrable", 4, 8)}
    same = mode_result("taskrun-deferrable", 4, 8)
    other = {**mode_result("kpo-deferrable", 43)}
    dev = {"seconds": 60.0, "date": "2026-11-24", "modes": [same, other]}
    text = kpo.devcluster_counts(dev, [real], [60.0])
    assert "TaskRunOperator deferrable 12 (real 12)" in text
    assert text.endswith("for: TaskRunOperator deferrable.")
    assert kpo.devcluster_counts({**dev, "seconds": 5.0}, [real], [60.0]) == ""
    assert kpo.devcluster_counts(None, [real], [60.0]) == ""
