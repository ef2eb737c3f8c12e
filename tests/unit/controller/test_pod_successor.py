"""A pod listed or watched under a cached pod's name with another uid: the cached one was
deleted without its DELETED event (a list after a watch outage shows only the new pod), and
the old uid's memories go with it (controller/cache.py ``succeeds``, ``Controller.on_pod``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.cache import succeeds
from controller.config import Settings
from controller.handlers import Controller
from controller.metrics import METRICS


def pod(uid: str | None, rv: str | None, owner: str = "t") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "t-1",
        "namespace": "ns",
        "ownerReferences": [{"kind": "TaskRun", "name": owner, "controller": True}],
    }
    if uid is not None:
        meta["uid"] = uid
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("cached", "body", "successor"),
    [
        # the same pod, newer or not: not a successor
        (pod("a", "5"), pod("a", "9"), False),
        (pod("a", "5"), pod("a", "5"), False),
        # another pod made after the cached one: it took the name, the old one is gone
        (pod("a", "5"), pod("b", "9"), True),
        # another pod at an older version: the old pod's late event after our own create
        # of the new one cached its response; the cached pod lives on
        (pod("b", "9"), pod("a", "5"), False),
        # versions unknown: the uid decides
        (pod("a", None), pod("b", "9"), True),
        (pod("a", "5"), pod("b", "x"), True),
        # a uid unknown: nothing can be told
        (pod(None, "5"), pod("b", "9"), False),
        (pod("a", "5"), pod(None, "9"), False),
        (pod("", "5"), pod("b", "9"), False),
    ],
)
def test_succeeds(cached: dict[str, Any], body: dict[str, Any], successor: bool) -> None:
    assert succeeds(body, cached) is successor


UIDS = st.one_of(st.none(), st.sampled_from(["", "a", "b"]))
VERSIONS = st.one_of(st.none(), st.sampled_from(["x"]), st.integers(0, 20).map(str))


@given(UIDS, VERSIONS, UIDS, VERSIONS)
def test_of_two_pods_at_most_one_succeeds_the_other_when_both_versions_are_known(
    uid1: str | None, rv1: str | None, uid2: str | None, rv2: str | None
) -> None:
    one, two = pod(uid1, rv1), pod(uid2, rv2)
    if succeeds(one, two) and succeeds(two, one):
        # only when a version cannot be compared: the uid alone decides
        assert not (rv1 or "").isdigit() or not (rv2 or "").isdigit()
    if succeeds(one, two):
        assert uid1 and uid2 and uid1 != uid2


def relist_deletions(kind: str) -> float:
    value = METRICS.registry.get_sample_value("taskrun_relist_deletions_total", {"kind": kind})
    return value or 0.0


@pytest.fixture
async def controller(monkeypatch: pytest.MonkeyPatch) -> Any:
    controller = Controller(Settings(metrics_port=0, health_port=0))
    controller.reconciled = []  # type: ignore[attr-defined]

    async def reconcile(key: Any) -> None:
        controller.reconciled.append(key)  # type: ignore[attr-defined]
        await asyncio.sleep(0)

    monkeypatch.setattr(controller, "reconcile", reconcile)
    yield controller
    await controller.close()


async def test_a_successor_drops_the_old_pods_memories_and_reconciles_both_owners(
    controller: Controller,
) -> None:
    key = ("ns", "t-1")
    controller.on_pod(None, pod("old", "5", owner="first"))
    controller.cache.deleting("old")
    controller._executor._stopped_sidecars.add("old")
    before = relist_deletions("pod")

    controller.on_pod(None, pod("new", "9", owner="second"))
    await controller.drained()

    assert controller.cache.pods[key]["metadata"]["uid"] == "new"
    assert "old" not in controller.cache._deleting
    assert "old" not in controller._executor._stopped_sidecars
    assert relist_deletions("pod") == before + 1
    # the old pod's TaskRun hears that its pod is gone, the new one's of its pod
    assert {("ns", "first"), ("ns", "second")} <= set(controller.reconciled)  # type: ignore[attr-defined]


async def test_the_old_pods_late_event_leaves_the_new_pods_memories(
    controller: Controller,
) -> None:
    key = ("ns", "t-1")
    controller.cache.wrote_pod(key, pod("new", "9"))  # our create's response
    controller.cache.deleting("new")
    controller._executor._stopped_sidecars.add("new")
    before = relist_deletions("pod")

    controller.on_pod("MODIFIED", pod("old", "5"))
    await controller.drained()

    assert "new" in controller.cache._deleting
    assert "new" in controller._executor._stopped_sidecars
    assert relist_deletions("pod") == before
