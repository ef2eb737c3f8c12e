"""bench/real.py's harness on the real control plane: a few TaskRuns and Jobs, each counted and
every figure finite (the benchmark's own numbers are in docs/benchmarks.md, not asserted)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from bench import real
from bench.real_report import BEGIN, END, merge, section
from realcluster.controlplane import JOB_CONTROLLERS, ControlPlane
from realcluster.pytest_plugin import unavailable

pytestmark = [pytest.mark.realcluster, pytest.mark.timeout(240)]

N = 4


def _finite(where: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _finite(f"{where}.{key}", inner)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        assert math.isfinite(value), f"{where} is {value}"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    args = real.parse_args(
        ["--sizes", str(N), "--paced", "", "--fixed-n", "0", "--idle", "0",
         "--budgets", "equal", "--timeout", "90", "--no-report",
         "--kinds", "taskrun,taskrun-keep,taskrun-lean,job",
         "--out", str(tmp_path_factory.mktemp("bench-real") / "real.json")]
    )  # fmt: skip
    return real.run(args)


def test_both_controllers_finish_every_run_and_every_figure_is_finite(
    results: dict[str, Any],
) -> None:
    runs = {r["kind"]: r for r in results["runs"]}
    assert set(runs) == {"taskrun", "taskrun-keep", "taskrun-lean", "job"}
    for kind, run in runs.items():
        assert run["n"] == N
        assert run["finished"] == N, f"{kind}: {run['finished']} of {N} finished"
        assert run["succeeded"] == N, f"{kind}: {run['succeeded']} of {N} succeeded"
        assert run["throughput"] > 0
        for key in ("create_to_terminal_ms", "pod_to_status_ms", "controller", "usage"):
            _finite(f"{kind}.{key}", run[key])
        assert len(run["latencies_pod_to_status_ms"]) == N
        assert run["controller_cpu_ms_per_run"] > 0
        assert run["controller_peak_rss_mb"] > 0


def test_requests_are_told_apart_by_client(results: dict[str, Any]) -> None:
    runs = {r["kind"]: r for r in results["runs"]}
    taskrun, job = runs["taskrun"], runs["job"]
    # Each controller creates its run's one pod; the other side creates none.
    assert taskrun["controller_requests"]["create pods"] == pytest.approx(1.0)
    assert job["controller_requests"]["create pods"] == pytest.approx(1.0)
    assert "create pods" not in taskrun["requests_by_user"].get(
        "system:serviceaccount:kube-system:job-controller", {}
    )
    # The harness made the creates of the runs themselves, and nothing counts them twice.
    assert taskrun["requests_by_user"]["harness"]["create taskruns"] == pytest.approx(1.0)
    assert job["requests_by_user"]["harness"]["create jobs"] == pytest.approx(1.0)
    for run in (taskrun, job):
        assert run["controller"]["writes"] >= 2  # the pod and at least one status write
        assert "harness" not in run["controller_users"]


def test_the_like_for_like_runs_keep_their_pods(results: dict[str, Any]) -> None:
    """``taskrun-keep``: onFinishAction keep_pod, as a Job keeps its pod; the one request
    per run that differs is the pod delete. ``taskrun-lean`` reads no log either."""
    runs = {r["kind"]: r for r in results["runs"]}
    assert runs["taskrun"]["controller_requests"]["delete pods"] == pytest.approx(1.0)
    assert runs["taskrun"]["controller_requests"]["get pods/log"] == pytest.approx(1.0)
    for kind in ("taskrun-keep", "taskrun-lean"):
        assert "delete pods" not in runs[kind]["controller_requests"], kind
        assert runs[kind]["controller_requests"]["create pods"] == pytest.approx(1.0)
    # ``taskrun-lean`` also reads no log, as a Job.
    assert "get pods/log" not in runs["taskrun-lean"]["controller_requests"]


def test_the_report_section_goes_first_and_replaces_the_previous_one(
    results: dict[str, Any], tmp_path: Path
) -> None:
    text = section(results, [])
    assert "TaskRun/Job" in text
    document = "# Benchmarks\n\n## On devcluster\n\nold figures\n"
    once = merge(document, text)
    assert once.index(BEGIN) < once.index("## On devcluster")
    twice = merge(once, text.replace("TaskRun/Job", "TaskRun over Job"))
    assert twice.count(BEGIN) == 1 and twice.count(END) == 1
    assert "TaskRun over Job" in twice and "old figures" in twice


def test_the_controller_manager_restarts_with_the_job_controller(tmp_path: Path) -> None:
    """ControlPlane's controller-manager flags and restart, which bench/real.py's idle phase
    uses: without the Job controller a Job gets no pod; restarted with it, it does."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with ControlPlane(
        workdir=tmp_path / "plane", controller_manager_args=("--kube-api-qps=50",)
    ) as plane:
        kcm = plane.component("kube-controller-manager")
        assert kcm.proc is not None and "--kube-api-qps=50" in kcm.argv
        api = plane.admin_api()
        job = real._job("default", "one", {"runSeconds": 0})
        api.call("POST", "/apis/batch/v1/namespaces/default/jobs", job)
        pods = "/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io/job-name%3Done"
        time.sleep(2)  # nothing to await: the absence of a pod is the point
        assert api.call("GET", pods)["items"] == []
        plane.restart_controller_manager(controllers=JOB_CONTROLLERS, extra_args=())
        restarted = plane.component("kube-controller-manager")
        assert restarted is not kcm and "--kube-api-qps=50" not in restarted.argv
        deadline = time.monotonic() + 60
        while not api.call("GET", pods)["items"]:
            assert time.monotonic() < deadline, "the Job controller made no pod in 60 s"
            time.sleep(0.2)  # polled: the harness has no watch client here
