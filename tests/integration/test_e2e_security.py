"""The security policy end to end: denied by default, allowed by a namespace override."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.core.security import PolicySet
from testcluster import Cluster
from tests.integration.conftest import Runs, run_controller


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster) -> tuple[str, str]:
    names = ("policy-strict", "policy-trusted")
    for name in names:
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        # A real API server's ServiceAccount admission refuses a pod whose account is
        # missing (devcluster too): the "sa" case's account must exist.
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}}
        cluster.apply({**account, "metadata": {"name": "builder", "namespace": name}})
    return names


@pytest.fixture(scope="module")
def policy_controller(cluster: Cluster, namespaces: tuple[str, str]) -> Iterator[None]:
    policy = PolicySet.from_dict(
        {"namespaces": {namespaces[1]: {"allowHostNetwork": True, "allowedServiceAccounts": ["*"]}}}
    )
    with run_controller(cluster, security_policy=policy):
        yield


@pytest.mark.parametrize(
    ("name", "spec", "field"),
    [
        ("hostnet", {"hostNetwork": True}, "spec.hostNetwork"),
        ("sa", {"serviceAccountName": "builder"}, "spec.serviceAccountName"),
        (
            "priv",
            {"containerSecurityContext": {"privileged": True}},
            "spec.containers[base].securityContext.privileged",
        ),
    ],
)
def test_denied_by_default_and_allowed_by_the_namespace_override(
    cluster: Cluster,
    namespaces: tuple[str, str],
    policy_controller: None,
    name: str,
    spec: dict,
    field: str,
) -> None:
    strict, trusted = (Runs(cluster, ns) for ns in namespaces)
    strict.create(name, scenario={}, **spec)
    denied = strict.wait_finished(name)
    assert (denied["phase"], denied["reason"]) == ("Failed", "PolicyDenied")
    assert field in denied["message"]
    assert strict.pod(f"{name}-1") is None, "a denied TaskRun must never get a pod"

    trusted.create(name, scenario={}, **spec)
    allowed = trusted.wait_finished(name)
    if name == "priv":  # the override allows host networking and accounts, not privilege
        assert (allowed["phase"], allowed["reason"]) == ("Failed", "PolicyDenied")
    else:
        assert allowed["phase"] == "Succeeded", allowed.get("message")
