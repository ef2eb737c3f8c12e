"""What the phases of the TaskRuns show in metrics: the running / pending gauges per
namespace, and the startup latency and run durations observed at each transition.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller import metrics
from controller.core.clock import parse_optional
from controller.workqueue import Key
from taskrun.api import FINISHED_PHASES, Phase

# The phases that have a gauge.
GAUGED = ("Running", "Pending")


class PhaseGauges:
    """The phase of every known TaskRun, counted per namespace for the gauges."""

    def __init__(self) -> None:
        self._phases: dict[Key, str | None] = {}
        self._counts: dict[str | None, dict[str, int]] = {phase: {} for phase in GAUGED}

    def count(self, key: Key, phase: str | None) -> None:
        """``key`` is now in ``phase`` (None: gone); the gauges move when it was or is gauged."""
        old = self._phases.get(key)
        if old == phase:
            return
        if phase is None:
            self._phases.pop(key, None)
        else:
            self._phases[key] = phase
        namespace = key[0]
        if old in self._counts:
            counts = self._counts[old]
            counts[namespace] -= 1
            if not counts[namespace]:
                del counts[namespace]
        if phase in self._counts:
            counts = self._counts[phase]
            counts[namespace] = counts.get(namespace, 0) + 1
        if {old, phase} & set(self._counts):
            metrics.set_counts(self._counts["Running"], self._counts["Pending"])


def observe_transition(before: Mapping[str, Any], after: Mapping[str, Any], now: datetime) -> None:
    """Startup latency when a run starts running, duration and reason when it finishes."""
    old = (before.get("status") or {}).get("phase")
    status = after.get("status") or {}
    new = status.get("phase")
    if old == new:
        return
    if new == Phase.RUNNING:
        created = parse_optional((after.get("metadata") or {}).get("creationTimestamp"))
        if created is not None:
            metrics.observe_startup_latency((now - created).total_seconds())
    if new in FINISHED_PHASES:
        started = parse_optional(status.get("startTime"))
        ended = parse_optional(status.get("completionTime"))
        duration = (ended - started).total_seconds() if started and ended else None
        metrics.observe_finished(str(new), str(status.get("reason", "")), duration)
