"""ObjectCache.pods_owned_by: a run's pods found through the owner index, which follows every
change of the pods cached (seen, written, replaced by another owner's pod, forgotten)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.cache import ObjectCache
from controller.core import naming
from controller.executor import Executor
from taskrun.api import ANNOTATION_UID


def a_pod(name: str, owner: str | None, rv: int, uid: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": uid or f"{name}-{owner}",
        "resourceVersion": str(rv),
    }
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "taskrun.dev/v1alpha1",
                "kind": "TaskRun",
                "uid": owner,
                "controller": True,
            }
        ]
    return {"metadata": meta}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_a_runs_pods_are_found_by_its_uid_and_shown_deleting():
    cache = ObjectCache()
    cache.seen_pod(("ns", "r-1"), a_pod("r-1", "A", 1), owned=True)
    cache.wrote_pod(("ns", "r-2"), a_pod("r-2", "A", 2))
    cache.seen_pod(("ns", "s-1"), a_pod("s-1", "B", 3), owned=True)
    cache.seen_pod(("ns", "x"), a_pod("x", None, 4), owned=True)
    assert names(cache.pods_owned_by("ns", "A")) == ["r-1", "r-2"]
    assert names(cache.pods_owned_by("other", "A")) == []
    cache.deleting("r-1-A")
    (going, _) = cache.pods_owned_by("ns", "A")
    assert going["metadata"]["deletionTimestamp"] == "requested"
    cache.forget_pod(("ns", "r-1"), "r-1-A")
    assert names(cache.pods_owned_by("ns", "A")) == ["r-2"]


def test_a_pod_replaced_under_its_name_by_another_runs_pod_moves_to_that_run():
    cache = ObjectCache()
    cache.seen_pod(("ns", "p"), a_pod("p", "A", 1), owned=True)
    cache.seen_pod(("ns", "p"), a_pod("p", "B", 2), owned=True)
    assert names(cache.pods_owned_by("ns", "A")) == []
    assert names(cache.pods_owned_by("ns", "B")) == ["p"]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["seen", "wrote", "forget"]),
        st.sampled_from(["p1", "p2", "p3"]),
        st.sampled_from(["A", "B", None]),
        st.integers(1, 5),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_the_index_always_agrees_with_a_scan_of_the_pods(ops):
    cache = ObjectCache()
    for op, name, owner, rv in ops:
        key = ("ns", name)
        if op == "forget":
            cached = cache.pods.get(key)
            cache.forget_pod(key, (cached or {}).get("metadata", {}).get("uid", ""))
        elif op == "seen":
            cache.seen_pod(key, a_pod(name, owner, rv), owned=True)
        else:
            cache.wrote_pod(key, a_pod(name, owner, rv))
    for owner in ("A", "B"):
        scanned = sorted(n for (_, n), p in cache.pods.items() if naming.owner_uid(p) == owner)
        assert names(cache.pods_owned_by("ns", owner)) == scanned


def test_only_our_own_pods_are_other_pods():
    """Executor.other_pods: the run's own pods (``naming.owns``: the ownerReference and the
    uid annotation) other than the current attempt's; a pod that names the run's uid in its
    ownerReference alone, or another run's pod, is never handed to the decision."""
    cache = ObjectCache()
    executor = Executor(client=_no_client, cache=cache, gauges=None, clock=None, requeue=print)  # type: ignore[arg-type]
    taskrun = {
        "metadata": {"name": "r", "namespace": "ns", "uid": "A"},
        "status": {"phase": "Pending", "reason": "Retrying", "history": [{"podName": "r-1"}]},
    }
    for name, owner, annotated in [
        ("r-1", "A", True),  # attempt 1's: handed over
        ("r-2", "A", True),  # the current attempt's: decided on as obs.pod
        ("r-0", "A", False),  # claims the owner without the annotation
        ("s-1", "B", True),
    ]:
        made = a_pod(name, owner, 1)
        if annotated:
            made["metadata"]["annotations"] = {ANNOTATION_UID: owner}
        cache.seen_pod(("ns", name), made, owned=True)
    assert names(list(executor.other_pods(taskrun))) == ["r-1"]


async def _no_client() -> Any:
    raise AssertionError("other_pods makes no request")
