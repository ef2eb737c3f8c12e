"""Table tests of the RBAC arithmetic the least-privilege proof relies on."""

from __future__ import annotations

import pytest
from rbac_check import Access, Grant, Rule, denied, rules_from_manifest, unused

PODS = Rule(
    verbs=("get", "list", "watch", "create", "delete"), api_groups=("",), resources=("pods",)
)
LOG = Rule(verbs=("get",), api_groups=("",), resources=("pods/log",))
STATUS_ANY = Rule(verbs=("patch",), api_groups=("taskrun.dev",), resources=("*/status",))
NAMED = Rule(
    verbs=("get", "patch"),
    api_groups=("kopf.dev",),
    resources=("clusterkopfpeerings",),
    resource_names=("taskrun-controller",),
)
IN_TEAM_A = Rule(verbs=("create",), api_groups=("",), resources=("pods",), namespace="team-a")


@pytest.mark.parametrize(
    ("rules", "access", "allowed"),
    [
        ([PODS], Access("create", "", "pods", namespace="x"), True),
        ([PODS], Access("patch", "", "pods", namespace="x"), False),
        # A subresource is its own resource: pods does not give pods/log, nor the reverse.
        ([PODS], Access("get", "", "pods", "log", namespace="x"), False),
        ([LOG], Access("get", "", "pods", "log", namespace="x"), True),
        ([LOG], Access("get", "", "pods", namespace="x"), False),
        ([PODS], Access("get", "apps", "pods", namespace="x"), False),
        ([STATUS_ANY], Access("patch", "taskrun.dev", "taskruns", "status"), True),
        ([STATUS_ANY], Access("patch", "taskrun.dev", "taskruns"), False),
        (
            [NAMED],
            Access("patch", "kopf.dev", "clusterkopfpeerings", name="taskrun-controller"),
            True,
        ),
        ([NAMED], Access("patch", "kopf.dev", "clusterkopfpeerings", name="other"), False),
        ([NAMED], Access("get", "kopf.dev", "clusterkopfpeerings"), False),
        ([IN_TEAM_A], Access("create", "", "pods", namespace="team-a"), True),
        ([IN_TEAM_A], Access("create", "", "pods", namespace="team-b"), False),
        # Listing across all namespaces is cluster scope, which a Role never grants.
        ([IN_TEAM_A], Access("create", "", "pods"), False),
        ([Rule(("*",), ("*",), ("*",))], Access("deletecollection", "x.io", "things"), True),
    ],
)
def test_denied_follows_the_rbac_authorizer(
    rules: list[Rule], access: Access, allowed: bool
) -> None:
    assert denied(rules, [access]) == ([] if allowed else [access])


def test_denied_reports_each_missing_access_once_in_order() -> None:
    a = Access("patch", "", "pods", namespace="x")
    b = Access("update", "taskrun.dev", "taskruns", "status", namespace="x")
    assert denied([PODS], [a, b, a, Access("get", "", "pods", namespace="x")]) == [a, b]


def test_unused_lists_every_grant_nobody_needed() -> None:
    used = [
        Access("get", "", "pods", namespace="x"),
        Access("watch", "", "pods"),
        Access("create", "", "pods", namespace="x"),
    ]
    assert unused([PODS, LOG], used) == [
        Grant("list", "", "pods"),
        Grant("delete", "", "pods"),
        Grant("get", "", "pods/log"),
    ]


def test_nothing_unused_when_every_grant_is_exercised() -> None:
    used = [
        Access("patch", "kopf.dev", "clusterkopfpeerings", name="taskrun-controller"),
        Access("get", "kopf.dev", "clusterkopfpeerings", name="taskrun-controller"),
    ]
    assert unused([NAMED], used) == []


def test_a_wildcard_grant_is_never_minimal_even_when_used() -> None:
    star = Rule(verbs=("*",), api_groups=("",), resources=("pods",))
    assert unused([star], [Access("get", "", "pods", namespace="x")]) == [Grant("*", "", "pods")]


def test_rules_from_manifest_scopes_a_role_to_its_namespace() -> None:
    role = {
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "team-a"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
    }
    assert rules_from_manifest(role) == [IN_TEAM_A]
    cluster_role = {**role, "kind": "ClusterRole"}
    assert rules_from_manifest(cluster_role)[0].namespace is None
