"""Run the controller: settings -> kopf operator with the controller's handlers."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import sys
from collections.abc import Sequence

import kopf

from controller import handlers, metrics
from controller.config import Settings, parse_args
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
        server = metrics.start_metrics_server(settings.metrics_port)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m controller``."""
    settings = parse_args(argv)
    setup_logging(settings.log_format)
    scope = "all namespaces" if settings.all_namespaces else ", ".join(settings.namespaces)
    log.info("taskrun-controller watching %s", scope)
    # Modules, models and settings live as long as the process: keep them out of every
    # collection (a full one scanned them all, pausing the loop for tens of milliseconds).
    gc.freeze()
    asyncio.run(run(settings))
    return 0
