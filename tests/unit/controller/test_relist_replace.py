"""controller/eventpath.py's Replace after a list: what the caches hold and the list did not
show gets a DELETED, unless our own write may have made it after the list was served."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.eventpath import Relist, Route, vanished
from controller.metrics import METRICS


def obj(name: str, rv: int | str | None, namespace: str = "ns") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if rv is not None:
        meta["resourceVersion"] = str(rv)
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("cached", "listed", "floor", "gone"),
    [
        # not listed and older than what the stream delivered: deleted meanwhile
        ([obj("a", 5)], set(), 9, ["a"]),
        ([obj("a", 9)], set(), 9, ["a"]),
        # listed: kept whatever its version
        ([obj("a", 5)], {("ns", "a")}, 9, []),
        ([obj("a", 50)], {("ns", "a")}, 9, []),
        # our write's response, later than anything the list or stream showed: the list may
        # have been served before it
        ([obj("a", 10)], set(), 9, []),
        # the stream delivered nothing yet (no floor): nothing can be proven gone
        ([obj("a", 1)], set(), None, []),
        # no numeric resourceVersion: kept
        ([obj("a", None), obj("b", "x1")], set(), 9, []),
        # same name in another namespace is another object
        ([obj("a", 3, "other")], {("ns", "a")}, 9, ["a"]),
        ([obj("a", 3), obj("b", 4), obj("c", 12)], {("ns", "b")}, 10, ["a"]),
    ],
)
def test_vanished(
    cached: list[dict[str, Any]], listed: set[tuple[str, str]], floor: int | None, gone: list[str]
) -> None:
    assert [b["metadata"]["name"] for b in vanished(cached, listed, floor)] == gone


def test_relist_notes_the_listed_keys_and_the_highest_version() -> None:
    relist = Relist(floor=7)
    relist.saw({"type": "MODIFIED", "object": obj("w", 8)})  # a watch event: not listed
    relist.saw({"type": None, "object": obj("a", 3)})
    relist.saw({"type": None, "object": obj("b", 12)})
    relist.saw({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "11"}}})
    assert relist.listed == {("ns", "a"), ("ns", "b")}
    assert relist.floor == 12
    relist.served_at("20")
    relist.served_at(None)
    assert relist.floor == 20
    relist.begin()
    assert relist.listed == set() and relist.floor == 20


def test_route_replace_sends_deleted_through_the_callback_for_its_namespace_only() -> None:
    cache = {("ns", "a"): obj("a", 3), ("other", "a"): obj("a", 4, "other")}
    calls: list[tuple[str | None, str]] = []

    def on_event(event_type: str | None, body: Any, *, owned: bool) -> None:
        calls.append((event_type, body["metadata"]["namespace"]))
        cache.pop((body["metadata"]["namespace"], body["metadata"]["name"]))

    def cached(namespace: str | None) -> list[Any]:
        return [b for k, b in cache.items() if namespace is None or k[0] == namespace]

    route = Route(on_event, cached=cached)
    assert route.replace("ns", Relist(floor=10)) == 1
    assert calls == [("DELETED", "ns")]
    assert route.replace(None, Relist(set(), 10)) == 1
    assert calls == [("DELETED", "ns"), ("DELETED", "other")]
    assert not cache


# A history on one resource, with a global resourceVersion as etcd's: the stream sees phase
# one, misses the outage (changes by others and our own writes), the list is served, then our
# own writes go on while the list's pages arrive.
Op = tuple[str, int, bool]  # (create/update/delete, object number, by us)
ops = st.lists(
    st.tuples(st.sampled_from(["create", "update", "delete"]), st.integers(0, 5), st.booleans()),
    max_size=12,
)


@given(seen=ops, outage=ops, after_list=ops, list_version_known=st.booleans())
def test_replace_drops_exactly_what_is_proven_gone(
    seen: list[Op], outage: list[Op], after_list: list[Op], list_version_known: bool
) -> None:
    store: dict[str, int] = {}  # name -> resourceVersion
    rv = 0
    cache: dict[str, int] = {}
    written_after_list: set[str] = set()
    written_in_outage: set[str] = set()

    def apply(op: Op, watched: bool, listed_already: bool) -> None:
        nonlocal rv
        verb, n, ours = op
        name = f"o{n}"
        if (verb == "create" and name in store) or (verb != "create" and name not in store):
            return  # the API server refuses it
        rv += 1
        if verb == "delete":
            del store[name]
            if watched:
                cache.pop(name, None)
            return
        store[name] = rv
        if watched or ours:  # a watch event, or our write's response cached at once
            cache[name] = max(cache.get(name, 0), rv)
            if not watched:
                (written_after_list if listed_already else written_in_outage).add(name)

    for op in seen:
        apply(op, watched=True, listed_already=False)
    relist = Relist(floor=rv or None)  # the stream's last event (floor as the watcher keeps it)
    for op in outage:
        apply(op, watched=False, listed_already=False)
    at_list = dict(store)
    if list_version_known:
        relist.served_at(str(rv))
    for name, version in at_list.items():
        relist.saw({"type": None, "object": obj(name, version)})
        cache[name] = max(cache.get(name, 0), version)
    for op in after_list:
        # deletions after the list are the watch's to deliver: only our writes here
        if op[0] != "delete" and op[2]:
            apply(op, watched=False, listed_already=True)
    gone = {
        b["metadata"]["name"]
        for b in vanished([obj(k, v) for k, v in cache.items()], relist.listed, relist.floor)
    }
    # never a live object, nor one our own write made after the list was served
    assert not gone & set(at_list)
    assert not gone & written_after_list
    # every object the stream showed and that was deleted while it was down is dropped: only
    # our own write made during the outage, later than all the stream showed, may stay stale
    stale = set(cache) - set(at_list) - written_after_list
    assert stale - written_in_outage <= gone
    assert all(cache[name] > (relist.floor or 0) for name in stale - gone)
    if list_version_known and rv:
        assert gone == stale  # with the list's own version nothing stale is left


def test_route_replace_counts_its_deleteds_under_its_kind() -> None:
    def count(kind: str) -> float:
        sample = METRICS.registry.get_sample_value("taskrun_relist_deletions_total", {"kind": kind})
        return sample or 0.0

    cache = {("ns", "a"): obj("a", 3), ("ns", "b"): obj("b", 4)}
    route = Route(lambda *_, **__: None, cached=lambda _ns: list(cache.values()), kind="unit-test")
    before = count("unit-test")
    assert route.replace("ns", Relist({("ns", "a"), ("ns", "b")}, 10)) == 0
    assert count("unit-test") == before
    assert route.replace("ns", Relist(set(), 10)) == 2
    assert count("unit-test") == before + 2
