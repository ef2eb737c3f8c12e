"""Run the controller: settings -> kopf operator with the controller's handlers."""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import logging
import os
import random
import socket
import sys
from collections.abc import Sequence

import kopf

from controller import handlers, k8s, metrics
from controller.config import Settings, StartupError, parse_args
from taskrun.api import GROUP, PLURAL

log = logging.getLogger(__name__)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(log_format: str) -> None:
    """Log to stderr as text or one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # kopf logs every handled watch event at INFO: one line per pod status change.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def kopf_settings(settings: Settings) -> kopf.OperatorSettings:
    """kopf's settings for these controller settings."""
    ks = handlers.configure(kopf.OperatorSettings())
    if settings.peering:
        ks.peering.name = settings.peering
        ks.peering.standalone = False
        ks.peering.mandatory = True
        # kopf pauses every operator that shares the highest priority: replicas need
        # distinct priorities, or all of them pause and nobody works.
        ks.peering.priority = random.randint(1, 2**31 - 1)
        ks.peering.lifetime = settings.peering_lifetime
        log.info(
            "peering %r with priority %d, lifetime %d s",
            settings.peering,
            ks.peering.priority,
            ks.peering.lifetime,
        )
    else:
        ks.peering.standalone = True
    # Scanning lists namespaces and CRDs cluster-wide, which a namespaced Role cannot
    # grant; a controller told its namespaces has no use for it.
    ks.scanning.disabled = not settings.all_namespaces
    if settings.selector:
        # Server-side filtering: other shards' TaskRuns never reach this process. Their
        # pods still do (they carry no shard label), and are ignored as unknown runs.
        ks.watching.label_selectors[GROUP, PLURAL] = settings.selector
    return ks


async def run(settings: Settings) -> None:
    """Run until stopped (SIGINT / SIGTERM)."""
    controller = handlers.Controller(settings)
    registry = handlers.register(controller)
    server = None
    if settings.metrics_port:
        try:
            server = metrics.start_metrics_server(settings.metrics_port)
        except OSError as err:
            raise StartupError("--metrics-port", settings.metrics_port, _port_problem(err)) from err
    try:
        await kopf.operator(
            registry=registry,
            settings=kopf_settings(settings),
            clusterwide=settings.all_namespaces,
            namespaces=list(settings.namespaces),
            standalone=not settings.peering,
            peering_name=settings.peering,
            liveness_endpoint=(
                f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
            ),
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _port_problem(err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        return "the port is already in use (another process listens on it)"
    return err.strerror or str(err)


def _check_port_free(flag: str, port: int) -> None:
    """Fail now, with the flag's name, if kopf could not listen on ``port`` later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As aiohttp binds: a port left in TIME_WAIT is free, one being listened on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as err:
            raise StartupError(flag, port, _port_problem(err)) from err


def _check_credentials(settings: Settings) -> None:
    """Fail now, naming the kubeconfig, if kopf's login could not read it later."""
    if settings.kubeconfig:
        os.environ["KUBECONFIG"] = settings.kubeconfig
    if os.path.exists(k8s.SERVICE_ACCOUNT_TOKEN):
        return
    source = (
        ("--kubeconfig", settings.kubeconfig)
        if settings.kubeconfig
        else ("KUBECONFIG", os.environ.get("KUBECONFIG") or "~/.kube/config")
    )
    try:
        k8s.check_kubeconfig()
    except k8s.KubeconfigError as err:
        raise StartupError(*source, str(err)) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m controller``: start-up errors are one line, exit code 2."""
    try:
        return _main(argv)
    except StartupError as err:
        print(f"python -m controller: error: {err}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    settings = parse_args(argv)
    _check_credentials(settings)
    for flag, port in (
        ("--metrics-port", settings.metrics_port),
        ("--health-port", settings.health_port),
    ):
        if port:
            _check_port_free(flag, port)
    setup_logging(settings.log_format)
    scope = "all namespaces" if settings.all_namespaces else ", ".join(settings.namespaces)
    log.info("taskrun-controller watching %s", scope)
    # Modules, models and settings live as long as the process: keep them out of every
    # collection (a full one scanned them all, pausing the loop for tens of milliseconds).
    gc.freeze()
    asyncio.run(run(settings))
    return 0
