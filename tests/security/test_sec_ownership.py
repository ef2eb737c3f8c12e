"""Issue 13 item 1: a pod of the TaskRun's pod name that is not its own is never adopted.

Two ways to plant one: create the pod ahead of time with the controller's labels and no
ownerReference (anyone with ``create pods``), or run a TaskRun under the victim's future
name and delete it with ``--cascade=orphan`` (anyone with TaskRun rights). Either pod's
sidecar hands over whatever result the attacker likes; it must never reach the victim.
"""

from __future__ import annotations

import json

import pytest

from controller.core import naming
from controller.core.pod import build_pod
from controller.handlers import Controller
from taskrun.api import ANNOTATION_UID
from tests.integration.conftest import SCENARIO, TASKRUNS, Runs, poll, stays

RESULT = "/airflow/xcom/return.json"
FORGED = '{"forged": true}'


def planted_pod(namespace: str, taskrun_name: str) -> dict:
    """The pod the controller would make for attempt 1, minus its owner: a forgery."""
    fake = {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": taskrun_name, "namespace": namespace, "uid": "attacker-uid"},
        "spec": {
            "image": "busybox:1.36",
            "doXcomPush": True,
            "annotations": {SCENARIO: json.dumps({"files": {RESULT: FORGED}})},
        },
    }
    pod = build_pod(fake, 1)
    del pod["metadata"]["ownerReferences"]
    return pod


def assert_not_adopted(runs: Runs, name: str, planted_uid: str) -> None:
    pod_name = naming.pod_name(name, 1)
    status = runs.wait_finished(name)
    assert (status["phase"], status["reason"]) == ("Failed", "PodNameConflict"), status
    assert f"pod {runs.namespace}/{pod_name}" in status["message"]
    assert "result" not in status
    # never deleted, never read
    stays(lambda: (runs.pod(pod_name) or {}).get("metadata", {}).get("uid") == planted_uid)
    assert (runs.pod(pod_name) or {}).get("metadata", {}).get("deletionTimestamp") is None
    logs = runs.cluster.requests.count(namespace=runs.namespace, subresource="log")
    assert logs == 0
    assert runs.cluster.requests.count(namespace=runs.namespace, subresource="exec") == 0


def test_a_precreated_pod_with_the_managed_by_label_is_not_adopted(
    controller: Controller, runs: Runs
) -> None:
    pod = planted_pod(runs.namespace, "victim")
    created = runs.cluster.create("pods", runs.namespace, pod)
    pod_name = created["metadata"]["name"]
    assert pod_name == naming.pod_name("victim", 1)
    poll(lambda: (runs.pod(pod_name) or {}).get("status", {}).get("phase") == "Succeeded")
    runs.create("victim", doXcomPush=True)
    assert_not_adopted(runs, "victim", created["metadata"]["uid"])


def test_a_pod_orphaned_by_a_deleted_taskrun_of_the_same_name_is_not_adopted(
    controller: Controller, runs: Runs
) -> None:
    runs.create(
        "victim",
        scenario={"files": {RESULT: FORGED}},
        doXcomPush=True,
        onFinishAction="keep_pod",
    )
    assert runs.wait_finished("victim")["result"] == FORGED
    pod_name = naming.pod_name("victim", 1)
    planted = runs.pod(pod_name)
    assert planted is not None
    # kubectl delete --cascade=orphan
    orphan = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}
    path = runs.cluster.resource(TASKRUNS).path(runs.namespace, "victim")
    runs.cluster.request("DELETE", path, body=orphan)
    # On a real cluster the garbage collector removes the ownerReference, and first has to
    # notice the TaskRun resource: its discovery of new resources runs every 30 s.
    poll(
        lambda: (
            runs.get("victim") is None and not runs.pod(pod_name)["metadata"].get("ownerReferences")
        ),
        timeout=8 if runs.cluster.flavor == "devcluster" else 60,
        what="the TaskRun gone and its pod orphaned (by the garbage collector)",
    )
    runs.cluster.requests.clear()
    runs.create("victim", doXcomPush=True)
    assert_not_adopted(runs, "victim", planted["metadata"]["uid"])


@pytest.mark.parametrize(
    ("refs", "annotation", "owned"),
    [
        ([], "me", False),
        ([{"uid": "other"}], "me", False),
        ([{"uid": "me"}], "me", True),
        ([{"uid": "me"}], "other", False),  # a uid annotation that disagrees
        ([{"uid": "me"}], None, False),
        ([{"uid": "me", "controller": False}], "me", False),
        ([{"uid": "me", "kind": "Job"}], "me", False),
    ],
)
def test_owns_table(refs: list[dict], annotation: str | None, owned: bool) -> None:
    full = [
        {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun", "controller": True, **r}
        for r in refs
    ]
    meta: dict = {"ownerReferences": full}
    if annotation is not None:
        meta["annotations"] = {ANNOTATION_UID: annotation}
    assert naming.owns({"metadata": meta}, "me") is owned
