"""A lighter path for the controller's watch events, inside kopf's own watches.

kopf hands every watch event to a per-object worker task, then to its resource-event
processing (a Body view, a Patch, an object logger, per-object memories, cause detection,
handler selection and invocation), all to call one ``on.event`` handler that only caches
the object and queues its TaskRun. That machinery was about a third of the controller's
CPU in a burst (docs/benchmarks.md, "Where the controller's CPU goes").

The handlers stay registered with kopf, which keeps deciding which watches exist, in which
namespaces, with which label selectors, and keeps opening, re-listing and **pausing**
them. Only the watcher task of a taken-over resource is swapped: instead of kopf's
``queueing.watcher`` (workers and processing) it is a loop over the same
``watching.infinite_watch`` stream with the same ``operator_paused`` toggles that kopf
gives every watcher. While kopf's peering pauses the operator (another instance is
active, the peering CRD is missing) that stream is closed and yields nothing, so no event
reaches the controller on this path either: the pause is kopf's own, not a copy of it.

The same toggle set holds back the controller's work queue (``paused_by``): kopf creates
one ``operator_paused`` per operator run and hands it to its watchers only, so the swapped
watcher passes it on, as a ResumeGate that also stays on after a pause until our streams
have listed again. Without it, a replica that became standby would go on reconciling the
keys it had queued and those its timers (deadlines, ttl, holds, error back-off) bring back,
beside the active replica; and at the resume it would act on its pre-pause caches.

If kopf's internals change so that the swap no longer applies, events go through kopf's
handlers as before: slower, and a standby's timers are not held back.
tests/integration/test_eventpath.py and tests/integration/test_ha_pause.py fail then.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import kopf
from kopf._cogs.clients import fetching, watching
from kopf._core.reactor import processing, queueing

from controller import metrics

log = logging.getLogger(__name__)

# A controller callback: (event type, the event's own freshly parsed object, owned=True).
OnEvent = Callable[..., None]
# Hears of the operator's pause toggle set (kopf's aiotoggles.ToggleSet) when a watcher starts.
PausedBy = Callable[[Any], None]
# The cached objects of one resource in a namespace (None: all namespaces).
Cached = Callable[[str | None], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Route:
    """Where the events of one resource go instead of kopf's processing."""

    on_event: OnEvent
    # The labels the kopf handler filters on: the same filter, applied here.
    labels: Mapping[str, str] = field(default_factory=dict)
    # What the controller's cache holds of this resource: after each list, what is cached
    # and was not listed gets a DELETED through ``on_event`` (client-go's Replace).
    cached: Cached | None = None
    # The ``kind`` label of taskrun_relist_deletions_total for those DELETEDs.
    kind: str = ""

    def deliver(self, raw_event: Mapping[str, Any]) -> None:
        body = raw_event.get("object")
        if not isinstance(body, dict):
            return
        if self.labels:
            labels = (body.get("metadata") or {}).get("labels") or {}
            if any(labels.get(k) != v for k, v in self.labels.items()):
                return
        try:
            self.on_event(raw_event.get("type"), body, owned=True)
        except Exception:
            # As kopf does for a failing event handler: log it, keep the stream.
            meta = body.get("metadata") or {}
            log.exception("event handler failed for %s/%s", meta.get("namespace"), meta.get("name"))

    def replace(self, namespace: str | None, relist: Relist) -> int:
        """After a list of ``namespace``: a DELETED for each cached object gone meanwhile;
        how many."""
        if self.cached is None:
            return 0
        gone = vanished(self.cached(namespace), relist.listed, relist.floor)
        for body in gone:
            self.deliver({"type": "DELETED", "object": body})
        if gone:
            metrics.observe_relist_deletions(self.kind, len(gone))
        return len(gone)


def resource_version(body: Mapping[str, Any]) -> int | None:
    text = (body.get("metadata") or {}).get("resourceVersion")
    return int(text) if isinstance(text, str) and text.isdigit() else None


def vanished(
    cached: Iterable[Mapping[str, Any]], listed: Set[tuple[str, str]], floor: int | None
) -> list[dict[str, Any]]:
    """The cached objects that a list which showed the keys ``listed`` proves deleted.

    ``floor``: the list's resourceVersion, or at least the highest one the stream delivered
    up to the list's end (its earlier watch events and the listed objects); the list was
    served at or after it. An
    object not listed whose cached version is not above it existed before the list and is
    gone. One cached at a later version (our own write's response, made while the list was
    in flight) may have been created after the list was served: it is kept, as is one with
    no numeric resourceVersion. What vanished is returned as a plain copy of the cached
    object: the DELETED handler drops the cache's own.
    """
    gone = []
    for body in cached:
        meta = body.get("metadata") or {}
        if (meta.get("namespace", ""), meta.get("name", "")) in listed:
            continue
        rv = resource_version(body)
        if rv is None or floor is None or rv > floor:
            continue
        gone.append(dict(body))
    return gone


@dataclass
class Relist:
    """What one watch stream showed since its last list ended: the keys listed (the events
    of type None, kopf's listed objects) and the highest resourceVersion delivered."""

    listed: set[tuple[str, str]] = field(default_factory=set)
    floor: int | None = None

    def served_at(self, list_version: str | None) -> None:
        """The list's own resourceVersion (kopf's fetch_objs yields it with each page)."""
        if isinstance(list_version, str) and list_version.isdigit():
            self.floor = max(self.floor or 0, int(list_version))

    def begin(self) -> None:
        """The list ended: the next one starts afresh (the floor stays: it only grows)."""
        self.listed = set()

    def saw(self, raw_event: Mapping[str, Any]) -> None:
        body = raw_event.get("object")
        if not isinstance(body, Mapping):
            return
        rv = resource_version(body)
        if rv is not None and (self.floor is None or rv > self.floor):
            self.floor = rv
        if raw_event.get("type") is None:
            meta = body.get("metadata") or {}
            self.listed.add((meta.get("namespace", ""), meta.get("name", "")))


@dataclass(frozen=True)
class _TakeOver:
    routes: Mapping[tuple[str, str], Route]
    paused_by: PausedBy | None


# Per registry, so that several operators in one process (tests) keep their own routes.
_TAKEN: weakref.WeakKeyDictionary[kopf.OperatorRegistry, _TakeOver] = weakref.WeakKeyDictionary()
_KOPF_WATCHER = queueing.watcher
_KOPF_FETCH = getattr(fetching, "fetch_objs", None)
# The Relist of the light watcher whose task runs kopf's list (its stream runs in that task).
_LISTING: contextvars.ContextVar[Relist | None] = contextvars.ContextVar("listing", default=None)
# After a pause, the work queue waits for the watch streams' re-lists at most this long: a
# stream that cannot list (the API server is away) does not hold the queue for longer.
RELIST_HOLD_SECONDS = 30.0


class ResumeGate:
    """kopf's pause toggle set (on: paused), held on after a pause until each of our watch
    streams has listed again, for RELIST_HOLD_SECONDS at most.

    A pause closes the streams, so a standby's caches miss every change made meanwhile by
    the active replica; the keys it held would run at once on what it saw before, and a
    TaskRun finished since would look unfinished (a second pod, a second status). After the
    re-lists the caches hold the current versions (of the objects that still exist: a list
    shows no deletion).
    """

    def __init__(self, operator_paused: Any) -> None:
        self._paused = operator_paused
        self._streams: set[object] = set()
        self._relisting: set[object] = set()
        self._relisted = asyncio.Event()
        self._relisted.set()
        self._hold_until: float | None = None  # set at the first look after the pause
        self._follower: asyncio.Task[None] | None = None

    def is_on(self) -> bool:
        return bool(self._paused.is_on()) or self._holding()

    async def wait_for(self, state: bool, /) -> None:
        """Wait until the gate is on (paused) or off (resumed and re-listed)."""
        if state:
            await self._paused.wait_for(True)
            return
        while self.is_on():
            if self._paused.is_on():
                await self._paused.wait_for(False)
                continue
            assert self._hold_until is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._relisted.wait(), self._hold_until - time.monotonic())

    def opened(self, stream: object) -> None:
        """A watch stream of ours started."""
        self._streams.add(stream)
        if self._follower is None:
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    def listed(self, stream: object) -> None:
        """The stream finished a list: what it watches is current in the caches."""
        self._relisting.discard(stream)
        if not self._relisting:
            self._relisted.set()

    def closed(self, stream: object) -> None:
        """The stream ended (kopf stopped watching that resource or namespace)."""
        self._streams.discard(stream)
        self.listed(stream)
        if not self._streams and self._follower is not None:
            self._follower.cancel()
            self._follower = None

    def _holding(self) -> bool:
        if not self._relisting:
            return False
        now = time.monotonic()
        if self._hold_until is None:
            self._hold_until = now + RELIST_HOLD_SECONDS
        if now < self._hold_until:
            return True
        log.warning(
            "%d watch stream(s) did not list again within %.0f s of the end of the pause; "
            "reconciling from the caches as they are",
            len(self._relisting),
            RELIST_HOLD_SECONDS,
        )
        self._relisting.clear()
        self._relisted.set()
        return False

    async def _follow(self) -> None:
        # Woken by the same notification as kopf's own pause-waiters, which close the
        # streams: every stream open now lists again before the pause counts as over.
        while True:
            await self._paused.wait_for(True)
            self._relisting = set(self._streams)
            if self._relisting:
                self._relisted.clear()
            self._hold_until = None
            await self._paused.wait_for(False)


# One gate per operator run: kopf makes one operator_paused toggle set per run.
_GATES: weakref.WeakKeyDictionary[Any, ResumeGate] = weakref.WeakKeyDictionary()


def take_over(
    registry: kopf.OperatorRegistry,
    routes: Mapping[tuple[str, str], Route],
    paused_by: PausedBy | None = None,
) -> None:
    """Deliver the watch events of ``routes`` ((group, plural) -> Route) of operators run
    with ``registry`` straight to their callbacks, on kopf's paused-or-not streams; hand
    ``paused_by`` the operator's pause toggle set as its watchers start."""
    _TAKEN[registry] = _TakeOver(dict(routes), paused_by)
    if queueing.watcher is not _watcher:
        queueing.watcher = _watcher
    if _KOPF_FETCH is not None and fetching.fetch_objs is _KOPF_FETCH:
        fetching.fetch_objs = _fetch_objs


async def _fetch_objs(**kwargs: Any) -> Any:
    """kopf's list, noting the list's resourceVersion for our streams' Replace: without it,
    an object our own write cached later than all the stream showed cannot be told gone.
    If kopf stops listing through it, the Replace keeps such objects (see ``vanished``)."""
    assert _KOPF_FETCH is not None
    relist = _LISTING.get()
    async for chunk, list_version in _KOPF_FETCH(**kwargs):
        if relist is not None:
            relist.served_at(list_version)
        yield chunk, list_version


def _taken_over(processor: Any) -> _TakeOver | None:
    if getattr(processor, "func", None) is not processing.process_resource_event:
        return None  # kopf's own watches (peering, namespaces, CRDs)
    keywords = getattr(processor, "keywords", None) or {}
    registry = keywords.get("registry")
    if registry is None:
        return None
    try:
        return _TAKEN.get(registry)
    except TypeError:  # not weak-referenceable: not a registry
        return None


def route_for(processor: Any, resource: Any) -> Route | None:
    """The Route of a kopf watcher's processor and resource, if it is one of ours."""
    taken = _taken_over(processor)
    if taken is None:
        return None
    key = (str(getattr(resource, "group", "")), str(getattr(resource, "plural", "")))
    return taken.routes.get(key)


def _watcher(*, processor: Any, resource: Any, **kwargs: Any) -> Any:
    # A plain function returning a coroutine, as the kopf function it replaces does when called.
    route = route_for(processor, resource)
    if route is None:
        return _KOPF_WATCHER(processor=processor, resource=resource, **kwargs)
    taken = _taken_over(processor)
    operator_paused = kwargs.get("operator_paused")
    gate = None
    if taken is not None and taken.paused_by is not None and operator_paused is not None:
        gate = _GATES.get(operator_paused)
        if gate is None:
            gate = _GATES[operator_paused] = ResumeGate(operator_paused)
        taken.paused_by(gate)
    return light_watcher(route=route, resource=resource, gate=gate, **kwargs)


async def light_watcher(
    *,
    route: Route,
    namespace: Any,
    settings: kopf.OperatorSettings,
    resource: Any,
    operator_paused: Any = None,
    operator_indexed: Any = None,
    resource_indexed: Any = None,
    gate: ResumeGate | None = None,
    **_: Any,  # what a later kopf may add for its own watcher
) -> None:
    """kopf's watcher for one resource and namespace without its workers and processing:
    the same stream (list, watch, re-list, pause), each event delivered in order."""
    stream = watching.infinite_watch(
        settings=settings, resource=resource, namespace=namespace, operator_paused=operator_paused
    )
    token = object()
    relist = Relist()
    _LISTING.set(relist)  # this task's own context: kopf's other lists are left alone
    if gate is not None:
        gate.opened(token)
    try:
        async for raw_event in stream:
            if raw_event is watching.Bookmark.LISTED:
                # Before the gate opens: the resumed queue must not act on what is gone.
                gone = route.replace(namespace, relist)
                if gone:
                    where = f"in {namespace}" if namespace else "cluster-wide"
                    log.info(
                        "%d %s %s gone since the last watch",
                        gone,
                        getattr(resource, "plural", "?"),
                        where,
                    )
                relist.begin()
                if gate is not None:
                    gate.listed(token)
                # kopf's readiness for indexed resources; none of ours is, but keep its contract.
                if operator_indexed is not None and resource_indexed is not None:
                    await operator_indexed.drop_toggle(resource_indexed)
                continue
            if isinstance(raw_event, watching.Bookmark):
                continue
            relist.saw(raw_event)
            if raw_event.get("type") == "BOOKMARK":
                continue
            route.deliver(raw_event)
    finally:
        if gate is not None:
            gate.closed(token)
