from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from controller import metrics
from controller.metrics import Metrics, start_metrics_server


@pytest.fixture
def served() -> Iterator[tuple[Metrics, str]]:
    m = Metrics()
    server = start_metrics_server(0, host="127.0.0.1", registry=m.registry)
    try:
        yield m, f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def scrape(url: str) -> list[Sample]:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and s.labels == labels:
            return s.value
    return None


def test_every_metric_is_under_the_taskrun_prefix(served: tuple[Metrics, str]) -> None:
    m, url = served
    m.observe_finished("Succeeded", "Succeeded", 3.0)
    m.observe_startup_latency(1.0)
    m.observe_reconcile_error("api")
    m.observe_api_request("create", "pods", 201, 0.01)
    m.set_counts({"a": 1}, {"a": 2})
    names = {s.name for s in scrape(url)}
    assert names, "nothing served"
    assert all(n.startswith("taskrun_") for n in names), names
    # The registry is our own: nothing of prometheus-client's default process collectors.
    assert not any(n.startswith(("process_", "python_")) for n in names)


def test_finished_runs_count_by_phase_and_reason_and_time_by_phase(
    served: tuple[Metrics, str],
) -> None:
    m, url = served
    m.observe_finished("Succeeded", "Succeeded", 4.0)
    m.observe_finished("Succeeded", "Succeeded", 40.0)
    m.observe_finished("Failed", "OOMKilled", 2.0)
    m.observe_finished("Cancelled", "Cancelled", None)  # never started: counted, not timed
    s = scrape(url)
    total = "taskrun_runs_finished_total"
    assert value(s, total, phase="Succeeded", reason="Succeeded") == 2
    assert value(s, total, phase="Failed", reason="OOMKilled") == 1
    assert value(s, total, phase="Cancelled", reason="Cancelled") == 1
    hist = "taskrun_run_duration_seconds"
    assert value(s, hist + "_count", phase="Succeeded") == 2
    assert value(s, hist + "_sum", phase="Succeeded") == 44.0
    assert value(s, hist + "_bucket", phase="Succeeded", le="5.0") == 1
    assert value(s, hist + "_bucket", phase="Succeeded", le="60.0") == 2
    assert value(s, hist + "_count", phase="Failed") == 1
    assert value(s, hist + "_count", phase="Cancelled") is None


def test_startup_latency_histogram(served: tuple[Metrics, str]) -> None:
    m, url = served
    for seconds in (0.1, 0.3, 7.0):
        m.observe_startup_latency(seconds)
    m.observe_startup_latency(-1.0)  # clock skew between nodes must not poison the sum
    s = scrape(url)
    assert value(s, "taskrun_startup_latency_seconds_count") == 3
    assert value(s, "taskrun_startup_latency_seconds_bucket", le="0.25") == 1
    assert value(s, "taskrun_startup_latency_seconds_bucket", le="10.0") == 3
    assert value(s, "taskrun_startup_latency_seconds_sum") == pytest.approx(7.4)


def test_api_requests_by_verb_resource_and_code(served: tuple[Metrics, str]) -> None:
    m, url = served
    m.observe_api_request("create", "pods", 201, 0.02)
    m.observe_api_request("create", "pods", 409, 0.03)
    m.observe_api_request("create", "pods", "409", 0.01)
    m.observe_api_request("get", "pods/log", 200, 0.5)
    s = scrape(url)
    c = "taskrun_api_requests_total"
    assert value(s, c, verb="create", resource="pods", code="201") == 1
    assert value(s, c, verb="create", resource="pods", code="409") == 2
    assert value(s, c, verb="get", resource="pods/log", code="200") == 1
    d = "taskrun_api_request_duration_seconds"
    assert value(s, d + "_count", verb="create", resource="pods") == 3
    assert value(s, d + "_sum", verb="create", resource="pods") == pytest.approx(0.06)
    assert value(s, d + "_bucket", verb="get", resource="pods/log", le="0.25") == 0


def test_reconcile_errors_by_kind(served: tuple[Metrics, str]) -> None:
    m, url = served
    m.observe_reconcile_error("api")
    m.observe_reconcile_error("api")
    m.observe_reconcile_error("unexpected")
    s = scrape(url)
    assert value(s, "taskrun_reconcile_errors_total", kind="api") == 2
    assert value(s, "taskrun_reconcile_errors_total", kind="unexpected") == 1


def test_gauges_follow_the_latest_full_count_and_drop_empty_namespaces(
    served: tuple[Metrics, str],
) -> None:
    m, url = served
    m.set_counts(running={"team-a": 3, "team-b": 1}, pending={"team-a": 2})
    s = scrape(url)
    assert value(s, "taskrun_running", namespace="team-a") == 3
    assert value(s, "taskrun_running", namespace="team-b") == 1
    assert value(s, "taskrun_pending", namespace="team-a") == 2

    m.set_counts(running={"team-a": 1}, pending={"team-c": 5})
    s = scrape(url)
    assert value(s, "taskrun_running", namespace="team-a") == 1
    assert value(s, "taskrun_running", namespace="team-b") is None
    assert value(s, "taskrun_pending", namespace="team-a") is None
    assert value(s, "taskrun_pending", namespace="team-c") == 5

    m.set_counts(running={}, pending={})
    names = {x.name for x in scrape(url)}
    assert "taskrun_running" not in names and "taskrun_pending" not in names


def test_module_functions_feed_the_process_wide_registry() -> None:
    registry = metrics.METRICS.registry
    finished = ("taskrun_runs_finished_total", {"phase": "Failed", "reason": "ExitCode"})
    requests = (
        "taskrun_api_requests_total",
        {"verb": "PATCH", "resource": "taskruns/status", "code": "200"},
    )
    # Other tests in this process may have counted already: compare deltas.
    before = [registry.get_sample_value(*finished) or 0, registry.get_sample_value(*requests) or 0]
    metrics.observe_finished("Failed", "ExitCode", 1.0)
    metrics.observe_api_request("PATCH", "taskruns/status", 200, 0.01)
    metrics.observe_api_request("PATCH", "taskruns/status", 200, 0.01)
    after = [registry.get_sample_value(*finished), registry.get_sample_value(*requests)]
    assert after == [before[0] + 1, before[1] + 2]


def test_default_server_serves_the_process_wide_registry() -> None:
    metrics.set_counts(running={"served-ns": 7}, pending={})
    server = start_metrics_server(0, host="127.0.0.1")
    try:
        s = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
        metrics.set_counts(running={}, pending={})
    assert value(s, "taskrun_running", namespace="served-ns") == 7
