"""The controller's RBAC, proved over the whole integration suite (issue: least privilege).

pytest collects this directory's files in name order, so this module runs after every
other integration test and reads what the in-process controllers asked of the session's
devcluster. tests/deploy/test_rbac_proof.py proves the same for the deployed process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from testcluster import Cluster, rbac

# tests/deploy's modules import each other by bare name (pytest's rootdir-less layout).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from controller_run import access_of
from deploy_helpers import only, render
from rbac_check import Access, denied, rules_from_manifest, unused

ROOT = Path(__file__).resolve().parents[2]
CONTROLLER_AGENTS = ("kopf/", "taskrun-controller/")
# Below this the suite did not run before this module: nothing to prove.
MIN_ACCESSES = 200


def suite_accesses(cluster: Cluster) -> list[Access]:
    accesses = []
    for record in cluster.requests.records:
        if (record.user_agent or "").startswith(CONTROLLER_AGENTS):
            access = access_of(record)
            if access is not None:
                accesses.append(access)
    return accesses


# Exec mode's extra grant, which docs/operations.md tells users to add in an overlay.
EXEC_RULE = '{apiGroups: [""], resources: [pods/exec], verbs: [get, create]}'


def test_the_clusterrole_allows_all_and_only_what_the_suite_used(cluster: Cluster) -> None:
    everything = suite_accesses(cluster)
    if len(everything) < MIN_ACCESSES:
        pytest.skip(f"only {len(everything)} controller requests: run the whole integration suite")
    # test_e2e_exec_mode runs --xcom-mode=exec, which needs the documented extra rule.
    # test_eventpath runs with kopf peering (granted for it alone): the ha overlay's grants,
    # which tests/deploy/test_ha_peering.py proves against two peered controllers.
    accesses = [a for a in everything if a.subresource != "exec" and a.group != "kopf.dev"]
    execs = [a for a in everything if a.subresource == "exec"]
    assert EXEC_RULE in (ROOT / "docs" / "operations.md").read_text()
    exec_role = {
        "kind": "ClusterRole",
        "metadata": {"name": "exec-mode"},
        "rules": [yaml.safe_load(EXEC_RULE)],
    }
    assert execs, "test_e2e_exec_mode made no exec request"
    assert denied(rules_from_manifest(exec_role), execs) == []
    role = only(render("base"), "ClusterRole", "taskrun-controller")
    rules = rules_from_manifest(role)
    missing = sorted(
        {(a.verb, a.group, a.resource, a.subresource) for a in denied(rules, accesses)}
    )
    assert missing == [], f"the ClusterRole lacks grants the controller used: {missing}"
    idle = unused(rules, accesses)
    assert idle == [], f"the ClusterRole grants what the whole suite never used: {idle}"


def test_the_api_server_refused_the_controller_nothing(cluster: Cluster) -> None:
    """Where the controller runs as its ServiceAccount (--cluster=real), kube-apiserver
    authorized every request of the whole suite against the shipped ClusterRole."""
    if cluster.controller_account is None:
        pytest.skip(f"--cluster={cluster.flavor}: the controller runs as the admin")
    user = rbac.service_account_user(*cluster.controller_account)
    mine = cluster.requests.filter(user=user)
    if len(mine) < MIN_ACCESSES:
        pytest.skip(f"only {len(mine)} controller requests: run the whole integration suite")
    # RBAC's refusals only: admission's 403s (a namespace being deleted, a missing
    # ServiceAccount) answer for the objects, not for the role.
    refused = sorted(
        {(r.verb, r.resource, r.subresource, r.namespace) for r in mine if r.decision == "forbid"}
    )
    assert refused == []
