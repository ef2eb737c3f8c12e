"""GitOps health of real TaskRuns: Argo CD's Lua check and kstatus (Flux, kpt) for every phase.

The TaskRuns come from the real controller on devcluster; the Lua runs in lupa (Lua 5.4,
as Argo CD's gopher-lua runs 5.1 code: the script uses nothing newer); kstatus is the
port in kstatus_oracle.py. The table in docs/gitops.md is generated here:
`TASKRUN_WRITE_DOCS=1 pytest tests/gitops` rewrites it, otherwise the test compares.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import kstatus_oracle
import pytest
import yaml
from gitops_helpers import integration

lupa = pytest.importorskip("lupa")

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "deploy" / "gitops" / "argocd-health.lua"
ARGOCD_CM = ROOT / "deploy" / "gitops" / "argocd-cm.yaml"
FLUX = ROOT / "deploy" / "gitops" / "flux-kustomization.yaml"
DOC = ROOT / "docs" / "gitops.md"
START, END = "<!-- health-table:start -->", "<!-- health-table:end -->"
LONG = {"runSeconds": 60}

EXPECTED_HEALTH = {
    "(not reported yet)": "Progressing",
    "Pending": "Progressing",
    "Running": "Progressing",
    "Succeeded": "Healthy",
    "Skipped": "Healthy",
    "Failed": "Degraded",
    "Cancelled": "Degraded",
}
EXPECTED_FLUX_CEL = {
    "(not reported yet)": "InProgress",
    "Pending": "InProgress",
    "Running": "InProgress",
    "Succeeded": "Current",
    "Skipped": "Current",
    "Failed": "Failed",
    "Cancelled": "Failed",
}
EXPECTED_KSTATUS = {
    # the CRD's status default (Reconciling=True) until the controller's first write
    "(not reported yet)": "InProgress",
    "Pending": "InProgress",
    "Running": "InProgress",
    "Succeeded": "Current",
    "Skipped": "Current",
    "Failed": "Failed",
    "Cancelled": "Failed",
}


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    """Run the health script as Argo CD does: `obj` a global table, the chunk returns hs."""
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, json.loads(json.dumps(obj)))
    result = runtime.execute(LUA.read_text())
    return {"status": result["status"], "message": result["message"]}


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


@pytest.fixture(scope="module")
def samples(controller: Any, cluster: Any) -> dict[str, Any]:
    """One real TaskRun per phase, as the controller left it, plus one it has not reported
    on (its pod waits out --pending-report-seconds: the status is the CRD's default)."""
    ns = f"gitops-health-{os.getpid() % 10000}"
    cluster.create_namespace(ns)
    runs = integration.Runs(cluster, ns)
    out: dict[str, Any] = {}
    out["(not reported yet)"] = runs.create("fresh", {"startDelaySeconds": 60})
    # No node has the label: unschedulable on devcluster's scheduler and on kube-scheduler.
    runs.create(
        "pending",
        {},
        scheduleTimeoutSeconds=300,
        nodeSelector={"taskrun.dev/test": "no-such-node"},
    )
    runs.create("running", LONG)
    runs.create("succeeded")
    runs.create("failed", {"exitCode": 3, "logs": "boom\n"})
    runs.create("skipped", {"exitCode": 5}, skipOnExitCode=[5])
    runs.create("cancelled", LONG)
    runs.wait_status("running", lambda s: s.get("phase") == "Running")
    runs.wait_status("cancelled", lambda s: s.get("phase") == "Running")
    runs.patch_spec("cancelled", {"cancel": True})
    runs.wait_status("pending", lambda s: s.get("phase") == "Pending", timeout=15)
    for name in ("succeeded", "failed", "skipped", "cancelled"):
        runs.wait_finished(name)
    for name in ("pending", "running", "succeeded", "skipped", "failed", "cancelled"):
        out[name.capitalize()] = runs.get(name)
    return out


def test_argocd_cm_snippet_carries_the_script_unchanged() -> None:
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    embedded = config_map["data"]["resource.customizations.health.taskrun.dev_TaskRun"]
    assert embedded == LUA.read_text()


def flux_exprs() -> dict[str, str]:
    kustomization = yaml.safe_load(FLUX.read_text())
    (exprs,) = [e for e in kustomization["spec"]["healthCheckExprs"] if e["kind"] == "TaskRun"]
    assert exprs["apiVersion"] == "taskrun.dev/v1alpha1"
    return exprs


def test_health_and_kstatus_of_every_phase(samples: dict[str, Any]) -> None:
    exprs = flux_exprs()
    rows = []
    for label, obj in samples.items():
        phase = (obj.get("status") or {}).get("phase")
        assert label == "(not reported yet)" or phase == label, (label, obj.get("status"))
        health = argocd_health(obj)
        kstatus, message = kstatus_oracle.compute(obj)
        assert health["status"] == EXPECTED_HEALTH[label], (label, health)
        assert kstatus == EXPECTED_KSTATUS[label], (label, kstatus, message)
        flux = kstatus_oracle.flux_cel(obj, exprs)
        assert flux == EXPECTED_FLUX_CEL[label], (label, flux)
        conditions = {
            c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []
        }
        rows.append((label, health["status"], kstatus, flux, conditions))
    # kubectl wait --for=condition=Succeeded still has its condition.
    assert rows[3][4]["Succeeded"] == "True" and rows[5][4]["Succeeded"] == "False"
    table = render_table(rows)
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    current, tail = rest.split(END, 1)
    current = current.strip("\n")
    if os.environ.get("TASKRUN_WRITE_DOCS"):
        DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    else:
        assert current == table, "docs/gitops.md's table is stale: TASKRUN_WRITE_DOCS=1 pytest"


def test_the_health_message_says_why(samples: dict[str, Any]) -> None:
    failed = argocd_health(samples["Failed"])
    assert failed["message"] == "Failed (ExitCode): container base exited with code 3"
    assert argocd_health(samples["(not reported yet)"])["message"].startswith("Waiting")


def test_kstatus_waits_while_a_spec_change_is_not_observed(samples: dict[str, Any]) -> None:
    running = json.loads(json.dumps(samples["Running"]))
    running["metadata"]["generation"] = running["status"]["observedGeneration"] + 1
    status, message = kstatus_oracle.compute(running)
    assert status == "InProgress" and "latest observed generation" in message


def render_table(rows: list[tuple[str, str, str, str, dict[str, str]]]) -> str:
    lines = [
        "| TaskRun phase | Argo CD health | kstatus (Flux `wait`, kpt) "
        "| Flux with `healthCheckExprs` | conditions |",
        "|---|---|---|---|---|",
    ]
    for label, health, kstatus, flux, conditions in rows:
        conds = ", ".join(f"{k}={v}" for k, v in conditions.items()) or "none"
        lines.append(f"| {label} | {health} | {kstatus} | {flux} | {conds} |")
    return "\n".join(lines)


def test_table_rendering_is_stable() -> None:
    rows = [("Running", "Progressing", "InProgress", "InProgress", {"Succeeded": "Unknown"})]
    assert re.search(
        r"\| Running \| Progressing \| InProgress \| InProgress \| Succeeded=Unknown \|",
        render_table(rows),
    )
