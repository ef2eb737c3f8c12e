"""A TaskRun no controller has reported on yet: the CRD's status default (taskrun/api/crd.py
DEFAULT_STATUS) makes kstatus, kubectl wait and Argo CD's check all wait for it.

Runs on the session's cluster (`--cluster=devcluster|real|kubeconfig`): what these tests
assert is kube-apiserver's structural defaulting, which devcluster imitates (store.py
`_out`, schema.py `defaults_only`); docs/gitops.md and docs/devcluster.md tell the story.
No controller runs here, so nothing but the API server writes status.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import kstatus_oracle
import pytest
from test_gitops_health import argocd_health

from taskrun.api.crd import DEFAULT_STATUS
from testcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "taskrun.yaml"
PLACEHOLDER = {"Succeeded": "Unknown", "Ready": "Unknown", "Reconciling": "True"}


def taskrun(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"image": "busybox", "cmds": ["echo", "hi"]},
    }


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


@pytest.fixture
def crd(kube: Cluster) -> None:
    kube.apply_file(CRD)


def test_the_default_status_is_in_progress_and_has_no_phase() -> None:
    obj = {"kind": "TaskRun", "metadata": {"generation": 1}, "status": DEFAULT_STATUS}
    assert kstatus_oracle.compute(obj) == ("InProgress", "Waiting for the controller")
    assert "phase" not in DEFAULT_STATUS
    assert argocd_health(obj)["status"] == "Progressing"


def test_a_fresh_taskrun_is_in_progress_on_every_read(kube: Cluster, kube_ns: str, crd: None):
    created = kube.create("taskruns", kube_ns, taskrun(kube_ns, "fresh"))
    listed = kube.list("taskruns", kube_ns)
    (added,) = [
        e["object"]
        for e in kube.watch("taskruns", kube_ns, resource_version="0", timeout=2)
        if e["type"] == "ADDED"
    ]
    read = kube.get("taskruns", kube_ns, "fresh")
    for how, obj in [("create", created), ("get", read), ("list", listed[0]), ("watch", added)]:
        assert obj["status"] == DEFAULT_STATUS, how
        assert kstatus_oracle.compute(obj)[0] == "InProgress", how
        assert argocd_health(obj)["status"] == "Progressing", how
    # kubectl wait reads the same: Reconciling holds at once, Succeeded does not.
    wait = ["kubectl", "--kubeconfig", str(kube.kubeconfig_path), "-n", kube_ns, "wait"]
    ok = subprocess.run([*wait, "--for=condition=Reconciling", "taskrun/fresh", "--timeout=10s"])
    assert ok.returncode == 0
    waiting = subprocess.run(
        [*wait, "--for=condition=Succeeded", "taskrun/fresh", "--timeout=1s"],
        capture_output=True,
        text=True,
    )
    assert waiting.returncode != 0 and "timed out" in waiting.stderr, waiting.stderr


def test_create_does_not_store_the_default_the_first_update_does(
    kube: Cluster, kube_ns: str, crd: None
) -> None:
    # kube-apiserver's create strategy drops status after defaulting the request; reads
    # default it again. The first update (a Flux re-apply, a label) stores it: one new
    # resourceVersion even for an update that changes nothing else; the next one is a no-op.
    created = kube.create("taskruns", kube_ns, taskrun(kube_ns, "upd"))
    first = kube.patch("taskruns", kube_ns, "upd", {})
    second = kube.patch("taskruns", kube_ns, "upd", {})
    versions = [o["metadata"]["resourceVersion"] for o in (created, first, second)]
    assert versions[0] != versions[1] == versions[2]
    assert first["status"] == second["status"] == DEFAULT_STATUS
    assert first["metadata"]["generation"] == 1


def test_the_controllers_merge_patch_replaces_the_default_conditions(
    kube: Cluster, kube_ns: str, crd: None
) -> None:
    kube.create("taskruns", kube_ns, taskrun(kube_ns, "patched"))
    mine = {"type": "Succeeded", "status": "Unknown", "reason": "PodCreated", "message": "m"}
    mine["lastTransitionTime"] = "2026-12-05T00:00:00Z"
    status = {"phase": "Pending", "reason": "PodCreated", "conditions": [mine]}
    written = kube.patch("taskruns", kube_ns, "patched", {"status": status}, sub="status")
    # A merge patch replaces a list: none of the placeholder conditions is left.
    assert written["status"] == status
    assert kube.get("taskruns", kube_ns, "patched")["status"] == status
    # A status removed altogether is defaulted again.
    cleared = kube.patch("taskruns", kube_ns, "patched", {"status": None}, sub="status")
    assert cleared["status"] == DEFAULT_STATUS


GADGETS = "gadgets.kstatus.example.dev"


def gadget_crd(status_default: dict[str, Any] | None) -> dict[str, Any]:
    status: dict[str, Any] = {"type": "object", "properties": {"phase": {"type": "string"}}}
    if status_default is not None:
        status["default"] = status_default
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": GADGETS},
        "spec": {
            "group": "kstatus.example.dev",
            "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def test_a_default_added_to_the_crd_shows_on_objects_stored_before(
    kube: Cluster, kube_ns: str
) -> None:
    # An upgrade that brings the status default finds TaskRuns stored without it: the API
    # server defaults what it reads from storage, so they show it without being written.
    kube.apply(gadget_crd(None))
    kube.wait_established(GADGETS)
    gadget = {"apiVersion": "kstatus.example.dev/v1", "kind": "Gadget"}
    gadget["metadata"] = {"name": "g", "namespace": kube_ns}
    created = kube.create("gadgets", kube_ns, {**gadget, "spec": {"size": 1}})
    assert "status" not in created
    kube.apply(gadget_crd({"phase": "Unknown"}))
    # The API server serves a changed CRD after its handler reloads it: wait for that.
    deadline = time.monotonic() + 30
    while "status" not in (read := kube.get("gadgets", kube_ns, "g")):
        assert time.monotonic() < deadline, "the new default was never served"
        time.sleep(0.1)
    assert read["status"] == {"phase": "Unknown"}
    assert read["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
