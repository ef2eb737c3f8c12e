"""Fault injection: errors, throttling, latency and dropped watches on demand."""

from __future__ import annotations

import dataclasses
import random
import threading


@dataclasses.dataclass
class FaultPlan:
    """What to break, and for whom. Change fields at any time; they apply to the next request.

    Scope: a request is affected only when it matches every scope field that is set
    (user agent prefix, resources, verbs, namespaces) and its user agent is not spared.
    Discovery is never affected unless ``include_discovery`` is set, so clients can start.
    """

    error_rate: float = 0.0
    error_codes: tuple[int, ...] = (500,)
    # Share of requests answered 429 with Retry-After.
    throttle_rate: float = 0.0
    retry_after: int = 1
    latency: float = 0.0
    jitter: float = 0.0
    # Close every watch stream after this many seconds.
    drop_watches_every: float | None = None
    # Answer every watch that resumes from a resourceVersion with 410 Gone.
    force_410_on_resume: bool = False
    user_agent_prefix: str | None = None
    # User agent prefixes never affected (a test harness watching the chaos, say).
    spare_user_agents: tuple[str, ...] = ()
    resources: frozenset[str] | None = None
    verbs: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None
    include_discovery: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self.seed = seed
            self._rng = random.Random(seed)

    def clear(self) -> None:
        """Back to no faults at all (the seed is kept)."""
        seed = self.seed
        for field in dataclasses.fields(self):
            setattr(self, field.name, field.default)
        self.reseed(seed)

    def applies(
        self, *, user_agent: str, resource: str, verb: str, namespace: str, discovery: bool
    ) -> bool:
        if discovery and not self.include_discovery:
            return False
        if any(user_agent.startswith(p) for p in self.spare_user_agents):
            return False
        if self.user_agent_prefix is not None and not user_agent.startswith(self.user_agent_prefix):
            return False
        if self.resources is not None and resource not in self.resources:
            return False
        if self.verbs is not None and verb not in self.verbs:
            return False
        return self.namespaces is None or namespace in self.namespaces

    def roll(self) -> tuple[float, int | None]:
        """(delay in seconds, status code to fail with or None) for one request."""
        with self._lock:
            delay = self.latency + (self._rng.uniform(0, self.jitter) if self.jitter else 0.0)
            if self.throttle_rate and self._rng.random() < self.throttle_rate:
                return delay, 429
            if self.error_rate and self._rng.random() < self.error_rate:
                return delay, self._rng.choice(self.error_codes)
            return delay, None
