"""Prometheus metrics of the TaskRun controller, all under ``taskrun_``.

The metrics live on their own ``CollectorRegistry`` rather than prometheus-client's
global one, so importing a library that registers its own collectors cannot change what
/metrics shows, and tests can build a fresh :class:`Metrics` without clashing names.

Label values are bounded on purpose (see docs/operations.md, "Metrics"): phase and
reason come from ``taskrun.api.reasons``; namespace appears only on the two gauges and
only while a namespace has TaskRuns in that phase; never a TaskRun or pod name.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DEFAULT_METRICS_PORT = 8080

# A run lasts from seconds to hours; the buckets cover both ends without a long tail.
RUN_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
# Created -> running is image pull plus scheduling: sub-second in a warm cluster, minutes
# when an image is large or a node has to be added.
STARTUP_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
API_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The controller's metrics on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs_finished = Counter(
            "taskrun_runs_finished_total",
            "TaskRuns that reached a terminal phase, by phase and reason.",
            ["phase", "reason"],
            registry=r,
        )
        self.run_duration = Histogram(
            "taskrun_run_duration_seconds",
            "Seconds from a TaskRun's start to its completion, by terminal phase.",
            ["phase"],
            buckets=RUN_DURATION_BUCKETS,
            registry=r,
        )
        self.startup_latency = Histogram(
            "taskrun_startup_latency_seconds",
            "Seconds from a TaskRun's creation to its pod running.",
            buckets=STARTUP_LATENCY_BUCKETS,
            registry=r,
        )
        self.running = Gauge(
            "taskrun_running",
            "TaskRuns in phase Running, by namespace.",
            ["namespace"],
            registry=r,
        )
        self.pending = Gauge(
            "taskrun_pending",
            "TaskRuns in phase Pending, by namespace.",
            ["namespace"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "taskrun_reconcile_errors_total",
            "Reconcile attempts that raised, by error kind.",
            ["kind"],
            registry=r,
        )
        self.api_requests = Counter(
            "taskrun_api_requests_total",
            "Requests the controller made to the Kubernetes API, by verb, resource and code.",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.events_dropped = Counter(
            "taskrun_events_dropped_total",
            "Events on TaskRuns dropped because too many were waiting to be posted.",
            registry=r,
        )
        self.relist_deletions = Counter(
            "taskrun_relist_deletions_total",
            "Cached objects a re-list showed deleted (or, a pod, replaced under its name) while "
            "the watch was down, by kind.",
            ["kind"],
            registry=r,
        )
        self.pod_deletes_pending = Gauge(
            "taskrun_pod_deletes_pending",
            "Pod deletes after a terminal status queued or in flight beside the reconciles.",
            registry=r,
        )
        self.pod_deletes_failed = Counter(
            "taskrun_pod_deletes_failed_total",
            "Pod deletes after a terminal status the API server refused (each is decided again).",
            registry=r,
        )
        self.api_request_duration = Histogram(
            "taskrun_api_request_duration_seconds",
            "Latency of the controller's Kubernetes API requests, by verb and resource.",
            ["verb", "resource"],
            buckets=API_REQUEST_BUCKETS,
            registry=r,
        )
        # Namespaces currently exported by each gauge, so set_counts can drop the
        # series of a namespace that no longer has TaskRuns instead of keeping it forever.
        self._gauge_namespaces: dict[str, set[str]] = {"running": set(), "pending": set()}
        self._lock = threading.Lock()

    def observe_finished(self, phase: str, reason: str, duration_seconds: float | None) -> None:
        """Count a TaskRun that reached a terminal phase; duration None when never started."""
        self.runs_finished.labels(phase=str(phase), reason=str(reason)).inc()
        if duration_seconds is not None and duration_seconds >= 0:
            self.run_duration.labels(phase=str(phase)).observe(duration_seconds)

    def observe_startup_latency(self, seconds: float) -> None:
        """Record the time from a TaskRun's creation to its pod running."""
        if seconds >= 0:
            self.startup_latency.observe(seconds)

    def observe_reconcile_error(self, kind: str) -> None:
        """Count a failed reconcile; ``kind`` must come from a small fixed set."""
        self.reconcile_errors.labels(kind=kind).inc()

    def observe_event_dropped(self) -> None:
        """Count an Event the recorder dropped (its buffer was full)."""
        self.events_dropped.inc()

    def observe_relist_deletions(self, kind: str, count: int) -> None:
        """Count the DELETEDs a re-list gave for ``kind`` (``taskrun`` or ``pod``)."""
        self.relist_deletions.labels(kind=kind).inc(count)

    def set_pod_deletes_pending(self, pending: int) -> None:
        """The pod deletes waiting for or in the hands of the disposer's posters."""
        self.pod_deletes_pending.set(pending)

    def observe_pod_delete_failed(self) -> None:
        """Count a pod delete the disposer sent and the API server refused."""
        self.pod_deletes_failed.inc()

    def observe_api_request(
        self, verb: str, resource: str, code: int | str, seconds: float
    ) -> None:
        """Record one Kubernetes API request (``resource`` may be ``pods/log``)."""
        self.api_requests.labels(verb=verb, resource=resource, code=str(code)).inc()
        self.api_request_duration.labels(verb=verb, resource=resource).observe(max(seconds, 0.0))

    def set_counts(self, running: Mapping[str, int], pending: Mapping[str, int]) -> None:
        """Replace the running/pending gauges with a full count by namespace.

        A namespace missing from a mapping loses its series, so the gauges only ever
        carry namespaces that currently hold TaskRuns.
        """
        with self._lock:
            for name, gauge, counts in (
                ("running", self.running, running),
                ("pending", self.pending, pending),
            ):
                for namespace in self._gauge_namespaces[name] - set(counts):
                    gauge.remove(namespace)
                for namespace, value in counts.items():
                    gauge.labels(namespace=namespace).set(value)
                self._gauge_namespaces[name] = set(counts)


METRICS = Metrics()
"""The process-wide metrics the controller serves."""


def observe_finished(phase: str, reason: str, duration_seconds: float | None) -> None:
    """Count a terminal TaskRun on the process-wide metrics."""
    METRICS.observe_finished(phase, reason, duration_seconds)


def observe_startup_latency(seconds: float) -> None:
    """Record created -> pod running on the process-wide metrics."""
    METRICS.observe_startup_latency(seconds)


def observe_reconcile_error(kind: str) -> None:
    """Count a failed reconcile on the process-wide metrics."""
    METRICS.observe_reconcile_error(kind)


def observe_event_dropped() -> None:
    """Count a dropped Event on the process-wide metrics."""
    METRICS.observe_event_dropped()


def observe_relist_deletions(kind: str, count: int) -> None:
    """Count a re-list's DELETEDs on the process-wide metrics."""
    METRICS.observe_relist_deletions(kind, count)


def set_pod_deletes_pending(pending: int) -> None:
    """The disposer's pending pod deletes on the process-wide metrics."""
    METRICS.set_pod_deletes_pending(pending)


def observe_pod_delete_failed() -> None:
    """Count a refused pod delete on the process-wide metrics."""
    METRICS.observe_pod_delete_failed()


def observe_api_request(verb: str, resource: str, code: int | str, seconds: float) -> None:
    """Record one Kubernetes API request on the process-wide metrics."""
    METRICS.observe_api_request(verb, resource, code, seconds)


def set_counts(running: Mapping[str, int], pending: Mapping[str, int]) -> None:
    """Replace the running/pending gauges on the process-wide metrics."""
    METRICS.set_counts(running, pending)


def start_metrics_server(
    port: int = DEFAULT_METRICS_PORT,
    host: str = "0.0.0.0",
    registry: CollectorRegistry | None = None,
) -> WSGIServer:
    """Serve /metrics in a daemon thread; returns the server (``.server_port``, ``.shutdown()``).

    Port 0 picks a free port. Stop it with ``server.shutdown(); server.server_close()``.
    """
    server, _thread = start_http_server(
        port, addr=host, registry=registry if registry is not None else METRICS.registry
    )
    return server
