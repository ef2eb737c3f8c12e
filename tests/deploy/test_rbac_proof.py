"""Least privilege, proved: the controller's real requests against the ClusterRole we ship.

A representative run starts devcluster and `python -m controller` with the args of the
rendered base Deployment, drives TaskRuns through success, failure, a result handed over
by log, skip, cancel, every finish action, a retry, a TTL and a pod-name conflict, then
reads devcluster's request accounting. Every (verb, group, resource, subresource) the
controller used must be allowed by deploy/base's ClusterRole, and every grant in it must
have been used; the same again for the single-namespace overlay's Role, with the
controller run on that overlay's args.

The same run's /metrics is scraped at the end: the counters must agree with what happened.

With --cluster=real the run is judged twice: kube-apiserver authorizes the controller,
which logs in as its ServiceAccount with a TokenRequest token bound to the overlay's RBAC
(every request RBAC refuses fails the proof), and its audit log gives the requests the
role is held to.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
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
    taskrun,
    wait_for,
)
from deploy_helpers import ROOT, render
from rbac_check import Access, Grant, Rule, denied, rules_from_manifest, unused

from taskrun.api import FINISHED_PHASES
from testcluster import Cluster, rbac

pytestmark = pytest.mark.timeout(240)

# Grants the base ClusterRole carries for paths this run cannot reach, each with the
# reason. Keep this empty unless a path truly cannot be driven on devcluster.
NOT_EXERCISED: dict[Grant, str] = {}
# The cluster-wide base (ClusterRole) and the single-namespace overlay (Role).
PROVED_OVERLAYS = ["base", "single-namespace"]

BIG_RESULT = json.dumps({"rows": ["x" * 100] * 60})  # > 4000 bytes: handed over by log
TASKRUNS = [
    taskrun(
        "ok-result",
        {"exitCode": 0, "logs": "hello\n", "files": {"/airflow/xcom/return.json": '{"a": 1}'}},
        doXcomPush=True,
    ),
    taskrun(
        "big-result",
        {"exitCode": 0, "files": {"/airflow/xcom/return.json": BIG_RESULT}},
        doXcomPush=True,
        onFinishAction="delete_succeeded_pod",
    ),
    taskrun(
        "fails-kept",
        {"exitCode": 2, "logs": "boom\n"},
        onFinishAction="keep_pod",
        logEventsOnFailure=True,
    ),
    taskrun("skipped", {"exitCode": 3}, skipOnExitCode=[3]),
    taskrun("retried", {"exitCode": 1}, retries=1, retryBackoff={"initialSeconds": 0}),
    taskrun("ttl", {"exitCode": 0}, ttlSecondsAfterFinished=1),
    taskrun("cancelled", {"exitCode": 0, "runSeconds": 120}, terminationGracePeriod=1),
    # Its pod name is taken by a pod it does not own (created below): 409, read, conflict.
    taskrun("conflict", {"exitCode": 0}),
]
SQUATTER = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "conflict-1", "namespace": NAMESPACE},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
}


@dataclass
class ProofRun:
    overlay: str
    records: list[Any]
    phases: dict[str, str]
    metrics_text: str | None
    namespace: str = NAMESPACE


def role_rules(overlay: str, namespace: str = NAMESPACE) -> list[Rule]:
    """The overlay's controller role; a Role moves to the namespace it is installed in."""
    roles = [
        o
        for o in render(overlay)
        if o["kind"] in ("Role", "ClusterRole") and o["metadata"]["name"] == "taskrun-controller"
    ]
    assert len(roles) == 1, f"{overlay}: expected one taskrun-controller role"
    role = roles[0]
    if role["kind"] == "Role":
        role = {**role, "metadata": {**role["metadata"], "namespace": namespace}}
    return rules_from_manifest(role)


@pytest.fixture(scope="module", params=PROVED_OVERLAYS)
def proof_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kube: Cluster
) -> Iterator[ProofRun]:
    overlay: str = request.param
    if not (ROOT / "controller" / "__main__.py").exists():
        pytest.skip("controller/__main__.py is not written yet: nothing to run")
    if kube.flavor != "devcluster":
        yield from authorized_proof_run(kube, overlay, tmp_path_factory.mktemp("rbac-proof"))
        return
    devcluster = pytest.importorskip("devcluster", reason="devcluster is not written yet")
    if not hasattr(devcluster, "DevCluster"):
        pytest.skip("devcluster.DevCluster is not written yet")
    tmp = tmp_path_factory.mktemp("rbac-proof")
    dc = devcluster.DevCluster()
    dc.start()
    try:
        k = Kubectl(str(dc.kubeconfig_path), tmp / "kubectl-cache")
        # Set-up goes straight into the store: it is not the controller's, nor accounted.
        dc.apply_file(ROOT / "crds" / "taskrun.yaml")
        dc.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        dc.apply(SQUATTER)
        metrics_port, health_port = free_port(), free_port()
        args = deployed_args(overlay, metrics_port, health_port)
        with controller_process(args, str(dc.kubeconfig_path), tmp / "controller.log"):
            wait_for(lambda: http_ok(f"http://127.0.0.1:{health_port}/healthz"), 30, "/healthz")
            # A watch is accounted when it ends; the list before it shows kopf is serving
            # (the watch resumes from the list's resourceVersion, so nothing is missed).
            wait_for(
                lambda: any(
                    a.verb == "list" and a.resource == "taskruns"
                    for a in controller_accesses(dc.requests.records)
                ),
                30,
                "the controller to list TaskRuns",
            )
            manifest = yaml.safe_dump_all(TASKRUNS)
            k("apply", "--validate=false", "-f", "-", stdin=manifest)
            wait_for(lambda: phase_of(k, "cancelled") == "Running", 30, "cancelled to run")
            k(
                "patch",
                "taskrun",
                "cancelled",
                "-n",
                NAMESPACE,
                "--type=merge",
                "-p",
                '{"spec": {"cancel": true}}',
            )
            phases = wait_for(lambda: all_finished(k), 90, "every TaskRun to finish")
            metrics_text = scrape(metrics_port)
        log_text = (tmp / "controller.log").read_text()
        assert "Traceback" not in log_text, log_text[-4000:]
        yield ProofRun(overlay, list(dc.requests.records), phases, metrics_text)
    finally:
        dc.stop()


def authorized_proof_run(kube: Cluster, overlay: str, tmp: Path) -> Iterator[ProofRun]:
    """The same run on a cluster that authorizes: the controller as the overlay's
    ServiceAccount in a namespace of its own; its requests from the audit log."""
    namespace = kube.create_namespace(f"{NAMESPACE}-{overlay}")
    kube.apply_file(ROOT / "crds" / "taskrun.yaml")
    account = rbac.install_identity(kube, overlay, namespace=namespace)
    user = rbac.service_account_user(*account)
    kubeconfig = rbac.token_kubeconfig(
        kube, kube.kubeconfig_path, *account, tmp / "controller.kubeconfig"
    )
    k = Kubectl(str(kube.kubeconfig_path), tmp / "kubectl-cache")
    kube.create("pods", namespace, moved(SQUATTER, namespace))
    metrics_port, health_port = free_port(), free_port()
    args = deployed_args(overlay, metrics_port, health_port, namespace)

    def mine() -> list[Any]:
        return kube.requests.filter(user=user)

    with controller_process(args, str(kubeconfig), tmp / "controller.log"):
        wait_for(lambda: http_ok(f"http://127.0.0.1:{health_port}/healthz"), 60, "/healthz")
        wait_for(
            lambda: any(r.verb == "list" and r.resource == "taskruns" for r in mine()),
            60,
            "the controller to list TaskRuns",
        )
        manifest = yaml.safe_dump_all([moved(t, namespace) for t in TASKRUNS])
        k("apply", "-f", "-", stdin=manifest)
        wait_for(lambda: phase_of(k, "cancelled", namespace) == "Running", 60, "cancelled to run")
        k("patch", "taskrun", "cancelled", "-n", namespace, "--type=merge",
          "-p", '{"spec": {"cancel": true}}')  # fmt: skip
        phases = wait_for(lambda: all_finished(k, namespace), 120, "every TaskRun to finish")
        metrics_text = scrape(metrics_port)
    log_text = (tmp / "controller.log").read_text()
    assert "Traceback" not in log_text, log_text[-4000:]
    refused = sorted(
        {(r.verb, r.resource, r.subresource, r.namespace) for r in mine() if r.decision == "forbid"}
    )
    assert refused == [], f"{overlay}: the API server refused the controller: {refused}"
    yield ProofRun(overlay, mine(), phases, metrics_text, namespace)


def moved(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}


def phase_of(k: Kubectl, name: str, namespace: str = NAMESPACE) -> str | None:
    out = json.loads(k("get", "taskrun", name, "-n", namespace, "-o", "json"))
    return (out.get("status") or {}).get("phase")


def all_finished(k: Kubectl, namespace: str = NAMESPACE) -> dict[str, str] | None:
    items = json.loads(k("get", "taskruns", "-n", namespace, "-o", "json"))["items"]
    status = {i["metadata"]["name"]: i.get("status") or {} for i in items}
    # The ttl TaskRun is gone once its TTL deleted it: that is its way of finishing.
    expected = {t["metadata"]["name"] for t in TASKRUNS} - {"ttl"}
    if set(status) != expected or not all(
        s.get("phase") in FINISHED_PHASES for s in status.values()
    ):
        return None
    return {name: f"{s['phase']}/{s.get('reason')}" for name, s in status.items()}


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())
    except OSError:
        return None


def summary(used: list[Access]) -> str:
    counts = Counter((a.verb, a.group or "core", a.resource_path) for a in used)
    return "\n".join(f"  {n:4d} {v} {g} {r}" for (v, g, r), n in sorted(counts.items()))


def test_the_run_reached_every_outcome(proof_run: ProofRun) -> None:
    assert proof_run.phases == {
        "ok-result": "Succeeded/Succeeded",
        "big-result": "Succeeded/Succeeded",
        "fails-kept": "Failed/ExitCode",
        "skipped": "Skipped/Skipped",
        "retried": "Failed/ExitCode",
        "cancelled": "Cancelled/Cancelled",
        "conflict": "Failed/PodNameConflict",
    }


def test_role_allows_every_request_the_controller_made(proof_run: ProofRun) -> None:
    rules = role_rules(proof_run.overlay, proof_run.namespace)
    used = controller_accesses(proof_run.records)
    assert used, "no controller requests recorded"
    missing = sorted({(a.verb, a.group, a.resource_path) for a in denied(rules, used)})
    assert missing == [], (
        f"{proof_run.overlay}: the controller needs grants it lacks: {missing}\n"
        f"requests made:\n{summary(used)}"
    )


def test_role_grants_nothing_the_controller_did_not_use(proof_run: ProofRun) -> None:
    rules = role_rules(proof_run.overlay, proof_run.namespace)
    used = controller_accesses(proof_run.records)
    extra = [g for g in unused(rules, used) if g not in NOT_EXERCISED]
    assert extra == [], (
        f"{proof_run.overlay}: grants nobody used: {extra}\nrequests made:\n{summary(used)}"
    )


def test_metrics_scraped_during_the_run_agree_with_the_outcomes(proof_run: ProofRun) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    if proof_run.metrics_text is None:
        pytest.fail("the controller served no /metrics on --metrics-port")
    samples = [s for f in text_string_to_metric_families(proof_run.metrics_text) for s in f.samples]
    finished: Counter[str] = Counter()
    for s in samples:
        if s.name == "taskrun_runs_finished_total":
            finished[s.labels["phase"]] += int(s.value)
    expected = Counter(p.split("/")[0] for p in proof_run.phases.values())
    expected["Succeeded"] += 1  # the ttl TaskRun succeeded before its TTL removed it
    assert finished == expected
    api_calls = sum(s.value for s in samples if s.name == "taskrun_api_requests_total")
    assert api_calls > 0
