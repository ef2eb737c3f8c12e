"""ObjectCache: what the watches and our own writes last showed, and the pods being deleted."""

from __future__ import annotations

from typing import Any

import pytest

from controller.cache import ObjectCache, owner_name

KEY = ("ns", "t")


def obj(rv: str, uid: str = "u1", phase: str | None = None, **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "t", "namespace": "ns", "uid": uid, "resourceVersion": rv, **meta}
    }
    if phase:
        body["status"] = {"phase": phase}
    return body


@pytest.mark.parametrize(
    ("cached", "event", "news", "kept_rv"),
    [
        (None, "5", True, "5"),
        ("5", "5", False, "5"),  # the echo of our own write
        ("5", "6", True, "6"),
        ("5", "4", True, "5"),  # older than our write: reconciled, not cached
        ("5", "not-a-number", True, "not-a-number"),
    ],
)
def test_seen_taskrun(cached: str | None, event: str, news: bool, kept_rv: str) -> None:
    cache = ObjectCache()
    if cached is not None:
        assert cache.wrote_taskrun(KEY, obj(cached, phase="Running"))
    assert cache.seen_taskrun(KEY, obj(event, phase="Running"), owned=False) is news
    assert cache.taskruns[KEY]["metadata"]["resourceVersion"] == kept_rv


def test_a_recreated_taskrun_replaces_the_old_one_whatever_its_version() -> None:
    cache = ObjectCache()
    cache.wrote_taskrun(KEY, obj("50"))
    assert cache.seen_taskrun(KEY, obj("3", uid="u2"), owned=False)
    assert cache.taskruns[KEY]["metadata"]["uid"] == "u2"


def test_a_finished_taskrun_is_cached_cut_down() -> None:
    cache = ObjectCache()
    body = {**obj("5", phase="Succeeded"), "spec": {"image": "i", "onFinishAction": "keep_pod"}}
    body["status"]["result"] = "x" * 1000
    cache.seen_taskrun(KEY, body, owned=True)
    assert cache.taskruns[KEY]["spec"] == {"onFinishAction": "keep_pod"}
    assert "result" not in cache.taskruns[KEY]["status"]


def test_an_event_body_not_owned_is_copied() -> None:
    cache = ObjectCache()
    body = obj("5", phase="Running")
    cache.seen_pod(KEY, body, owned=False)
    body["status"]["phase"] = "Failed"
    assert cache.pods[KEY]["status"]["phase"] == "Running"


def test_a_pod_we_delete_shows_deleting_until_its_deleted_event() -> None:
    cache = ObjectCache()
    cache.wrote_pod(KEY, obj("5"))
    cache.deleting("u1")
    assert cache.pod(KEY)["metadata"]["deletionTimestamp"] == "requested"
    assert "deletionTimestamp" not in cache.pods[KEY]["metadata"]  # the cached object is kept
    cache.forget_pod(KEY, "u1")
    assert cache.pod(KEY) is None
    cache.wrote_pod(KEY, obj("7"))  # a new pod of the same name and uid is not deleting
    assert "deletionTimestamp" not in cache.pod(KEY)["metadata"]


def test_owner_name() -> None:
    ref = {"kind": "TaskRun", "name": "t", "controller": True}
    assert owner_name(obj("1", ownerReferences=[ref])) == "t"
    assert owner_name(obj("1", ownerReferences=[{**ref, "controller": False}])) is None
    assert owner_name(obj("1", ownerReferences=[{**ref, "kind": "Job"}])) is None
