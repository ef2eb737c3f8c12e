"""The ha overlay on devcluster: two replicas with its args, kopf peering, one active.

Both controllers run the rendered ha Deployment's args against one devcluster holding
kopf's peering CRDs and the overlay's ClusterKopfPeering. The TaskRuns must all finish
with exactly one pod each, and the peering requests must fit the overlay's RBAC.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from controller_run import (
    NAMESPACE,
    Kubectl,
    controller_accesses,
    controller_process,
    deployed_args,
    free_port,
    http_ok,
    peered_devcluster,
    taskrun,
    wait_for,
)
from deploy_helpers import ROOT, only, render
from rbac_check import denied, rules_from_manifest, unused

pytestmark = pytest.mark.timeout(180)

RUNS = [taskrun(f"ha-{i}", {"exitCode": 0, "runSeconds": 0.2}) for i in range(4)]


@pytest.fixture(scope="module")
def ha_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaRun]:
    if not (ROOT / "controller" / "__main__.py").exists():
        pytest.skip("controller/__main__.py is not written yet: nothing to run")
    tmp = tmp_path_factory.mktemp("ha")
    with peered_devcluster() as dc:
        k = Kubectl(str(dc.kubeconfig_path), tmp / "kubectl-cache")
        ports = [(free_port(), free_port()) for _ in range(2)]
        with contextlib.ExitStack() as stack:
            for i, (metrics_port, health_port) in enumerate(ports):
                args = deployed_args("ha", metrics_port, health_port)
                kubeconfig = str(dc.kubeconfig_path)
                stack.enter_context(controller_process(args, kubeconfig, tmp / f"c{i}.log"))
            for _, health_port in ports:
                wait_for(lambda p=health_port: http_ok(f"http://127.0.0.1:{p}/healthz"), 30, "up")
            k("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(RUNS))
            done = poll(lambda: finished(k), 20)
        logs = "\n".join((tmp / f"c{i}.log").read_text() for i in range(2))
        yield HaRun(dc.requests.records, logs, done)


@dataclass
class HaRun:
    records: list[Any]
    logs: str
    all_finished: bool


def poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def finished(k: Kubectl) -> bool:
    items = json.loads(k("get", "taskruns", "-n", NAMESPACE, "-o", "json"))["items"]
    phases = [(i.get("status") or {}).get("phase") for i in items]
    return len(phases) == len(RUNS) and all(p == "Succeeded" for p in phases)


def test_one_replica_works_and_makes_one_pod_per_taskrun(ha_run: HaRun) -> None:
    assert "Possibly conflicting operators with the same priority" not in ha_run.logs
    assert ha_run.all_finished, "the TaskRuns did not finish under peering"
    used = controller_accesses(ha_run.records)
    creates = [a for a in used if (a.verb, a.resource) == ("create", "pods")]
    assert len(creates) == len(RUNS), f"{len(creates)} pod creates for {len(RUNS)} TaskRuns"


def test_peering_requests_fit_the_ha_rbac(ha_run: HaRun) -> None:
    records = ha_run.records
    objs = render("ha")
    rules = [
        *rules_from_manifest(only(objs, "ClusterRole", "taskrun-controller")),
        *rules_from_manifest(only(objs, "ClusterRole", "taskrun-controller-peering")),
    ]
    used = controller_accesses(records)
    assert denied(rules, used) == []
    # Every peering grant is used by the peering alone, whatever the TaskRuns did.
    peering_rules = rules_from_manifest(only(objs, "ClusterRole", "taskrun-controller-peering"))
    assert unused(peering_rules, used) == []
