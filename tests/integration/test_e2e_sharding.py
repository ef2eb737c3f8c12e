"""Sharding one scope among controllers by a label selector on TaskRuns (--selector)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from taskrun.api.crd import DEFAULT_STATUS
from testcluster import Cluster
from tests.integration.conftest import SCENARIO, TASKRUNS, Runs, run_controller, stays

SHARD = "taskrun.dev/shard"


def create(runs: Runs, name: str, shard: str) -> None:
    body = {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": name, "namespace": runs.namespace, "labels": {SHARD: shard}},
        "spec": {"image": "busybox:1.36", "annotations": {SCENARIO: json.dumps({})}},
    }
    runs.cluster.create(TASKRUNS, runs.namespace, body)


def test_each_shard_runs_only_its_own_taskruns(cluster: Cluster, kube_ns: str) -> None:
    runs = Runs(cluster, kube_ns)
    with run_controller(cluster, selector=f"{SHARD}=a"):
        create(runs, "mine", "a")
        create(runs, "theirs", "b")
        assert runs.wait_finished("mine")["phase"] == "Succeeded"
        stays(
            # the CRD's placeholder status: nothing written
            lambda: runs.status("theirs") == DEFAULT_STATUS and runs.pod("theirs-1") is None,
            seconds=1.0,
            what="the other shard's TaskRun left alone",
        )
    with run_controller(cluster, selector=f"{SHARD}=b"):
        assert runs.wait_finished("theirs")["phase"] == "Succeeded"
    # The API server filters: the controller's list and watch carry the selector.
    selectors = {
        parse_qs(r.query).get("labelSelector", [""])[0]
        for r in cluster.requests.filter(resource="taskruns")
        if r.verb in ("list", "watch") and (r.user_agent or "").startswith("kopf/")
    }
    assert {f"{SHARD}=a", f"{SHARD}=b"} <= selectors
