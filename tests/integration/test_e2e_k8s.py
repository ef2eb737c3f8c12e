"""controller.k8s against the session's cluster: retries, adoption on 409, preconditions, logs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from controller.core import naming
from controller.k8s import ApiError, Client, PodNameConflict
from devcluster import DevCluster
from taskrun.api import ANNOTATION_UID
from testcluster import Cluster
from tests.integration.conftest import Plain, Runs, poll

FAULTS = "injects API faults (devcluster.faults), which a real API server has no knob for"


@pytest.fixture
def faults(cluster: Cluster) -> Iterator[DevCluster]:
    dev = cluster.devcluster
    yield dev
    dev.faults.clear()


def failing(cluster: DevCluster, namespace: str, **plan) -> None:
    cluster.faults.user_agent_prefix = "taskrun-controller"
    cluster.faults.namespaces = frozenset({namespace})
    for key, value in plan.items():
        setattr(cluster.faults, key, value)


def pod_body(name: str, owner_uid: str, owner_name: str) -> dict:
    """A pod owned by the TaskRun ``owner_name``: the name must be right too, or the real
    garbage collector finds no such owner and deletes the pod mid-test."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "annotations": {ANNOTATION_UID: owner_uid},
            "ownerReferences": [
                {
                    "apiVersion": "taskrun.dev/v1alpha1",
                    "kind": "TaskRun",
                    "name": owner_name,
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "base", "image": "busybox"}], "restartPolicy": "Never"},
    }


@pytest.mark.devcluster_only(FAULTS)
async def test_server_errors_are_retried_a_bounded_number_of_times(faults: DevCluster, runs: Runs):
    failing(faults, runs.namespace, error_rate=1.0, error_codes=(503,))
    client = Client(Plain(faults.url), max_tries=3)
    try:
        with pytest.raises(ApiError) as raised:
            await client.get_pod(runs.namespace, "nope")
    finally:
        await client.close()
    assert raised.value.status == 503
    assert faults.requests.count(namespace=runs.namespace, verb="get", code=503) == 3


@pytest.mark.devcluster_only(FAULTS)
async def test_429_honours_retry_after(faults: DevCluster, runs: Runs):
    failing(faults, runs.namespace, throttle_rate=1.0, retry_after=1)
    client = Client(Plain(faults.url), max_tries=2)
    started = time.monotonic()
    try:
        with pytest.raises(ApiError) as raised:
            await client.get_pod(runs.namespace, "nope")
    finally:
        await client.close()
    assert raised.value.status == 429
    assert time.monotonic() - started >= 1.0
    assert faults.requests.count(namespace=runs.namespace, code=429) == 2


@pytest.mark.devcluster_only(FAULTS)
async def test_client_errors_are_not_retried(faults: DevCluster, runs: Runs):
    failing(faults, runs.namespace, error_rate=1.0, error_codes=(403,))
    client = Client(Plain(faults.url))
    try:
        with pytest.raises(ApiError):
            await client.get_pod(runs.namespace, "nope")
    finally:
        await client.close()
    assert faults.requests.count(namespace=runs.namespace, code=403) == 1


def owner(runs: Runs, name: str) -> str:
    """The uid of a fresh TaskRun (no controller runs here), so GC keeps its pods."""
    return str(runs.create(name, scenario={"runSeconds": 5})["metadata"]["uid"])


async def test_a_409_on_create_adopts_our_pod_or_names_the_conflict(cluster: Cluster, runs):
    ours, theirs = owner(runs, "a"), owner(runs, "b")
    client = Client(cluster.credentials())
    try:
        created = await client.create_pod(runs.namespace, pod_body("p-1", ours, "a"), ours)
        again = await client.create_pod(runs.namespace, pod_body("p-1", ours, "a"), ours)
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        assert naming.owner_uid(again) == ours
        with pytest.raises(PodNameConflict, match="is not this TaskRun's"):
            await client.create_pod(runs.namespace, pod_body("p-1", theirs, "b"), theirs)
    finally:
        await client.close()
    assert runs.pod_creates() == 1


async def test_the_garbage_collector_takes_a_pod_whose_owner_reference_names_another(
    cluster: Cluster, runs: Runs
):
    """The owner is looked up by name and its uid compared: a right uid under a wrong name is
    an absent owner, on a real cluster as on devcluster (the cause of a flaky test once)."""
    ours = owner(runs, "a")
    client = Client(cluster.credentials())
    try:
        await client.create_pod(runs.namespace, pod_body("misnamed", ours, "nobody"), ours)
        await client.create_pod(runs.namespace, pod_body("named", ours, "a"), ours)
    finally:
        await client.close()
    poll(lambda: runs.pod("misnamed") is None, timeout=60, what="the misnamed pod collected")
    assert runs.pod("named") is not None


async def test_delete_with_a_stale_uid_leaves_the_new_pod_alone(cluster: Cluster, runs: Runs):
    client = Client(cluster.credentials())
    try:
        ours = owner(runs, "a")
        await client.create_pod(runs.namespace, pod_body("p-2", ours, "a"), ours)
        await client.delete_pod(runs.namespace, "p-2", "some-older-uid", 0)
        assert await client.get_pod(runs.namespace, "p-2") is not None
        await client.delete_pod(runs.namespace, "absent", None, 0)
    finally:
        await client.close()


async def test_log_tail_and_byte_limit(cluster: Cluster, runs: Runs):
    logs = "".join(f"line {i}\n" for i in range(10))
    runs.create("logged", scenario={"logs": logs})
    taskrun = runs.get("logged")
    assert taskrun is not None
    # No controller here: build the pod the way it would.
    from controller.core.pod import build_pod

    pod = build_pod(taskrun, 1)
    client = Client(cluster.credentials())
    try:
        await client.create_pod(runs.namespace, pod, taskrun["metadata"]["uid"])
        poll(
            lambda: (runs.pod("logged-1") or {}).get("status", {}).get("phase") == "Succeeded",
            what="the pod to finish",
        )
        tail = await client.read_log(
            runs.namespace, "logged-1", "base", tail_lines=3, limit_bytes=1000
        )
        limited = await client.read_log(runs.namespace, "logged-1", "base", limit_bytes=7)
    finally:
        await client.close()
    assert tail == (b"line 7\nline 8\nline 9\n", True)
    assert limited == (b"line 0\n", False)
    assert runs.pod("logged-1")
