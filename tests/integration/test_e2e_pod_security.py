"""Pod Security Admission and the controller's own policy, together (docs/security.md).

Namespaces labelled `pod-security.kubernetes.io/enforce=baseline` and `=restricted`; the
controller runs as its ServiceAccount (on --cluster=real) with the default policy, plus one
override that lets the baseline namespace use hostNetwork so that the API server, not the
controller, is the one to refuse it. What each TaskRun gets:

- a pod the controller's policy denies: `PolicyDenied` naming the field, before any pod
  create reaches the API server;
- a pod the controller allows and Pod Security Admission refuses (403 "violates
  PodSecurity"): `PolicyDenied` with the API server's words, no pod, no retry;
- a pod both allow: it runs, with its result when it has the xcom sidecar (which follows a
  non-root base container into the Restricted fields).

devcluster has no Pod Security Admission (docs/devcluster.md), so this runs on a real API
server only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.core.security import PolicySet
from taskrun.api import XCOM_RESULT_PATH
from testcluster import Cluster
from tests.integration.conftest import CONTROLLER_AGENT, Runs, run_controller

ENFORCE = "pod-security.kubernetes.io/enforce"
BASELINE_NS = "psa-baseline"
RESTRICTED_NS = "psa-restricted"
# What the Restricted standard asks of a pod and of each container.
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
PSA_WORDS = "the cluster's Pod Security admission refused the pod"


@pytest.fixture(scope="module")
def psa_namespaces(cluster: Cluster) -> tuple[str, str]:
    if cluster.flavor == "devcluster":
        pytest.skip("devcluster has no Pod Security Admission (docs/devcluster.md)")
    cluster.create_namespace(BASELINE_NS, {ENFORCE: "baseline"})
    cluster.create_namespace(RESTRICTED_NS, {ENFORCE: "restricted"})
    return BASELINE_NS, RESTRICTED_NS


@pytest.fixture(scope="module")
def psa_controller(cluster: Cluster, psa_namespaces: tuple[str, str]) -> Iterator[None]:
    policy = PolicySet.from_dict({"namespaces": {BASELINE_NS: {"allowHostNetwork": True}}})
    with run_controller(cluster, security_policy=policy):
        yield


def _pod_creates(cluster: Cluster, namespace: str, code: int, since: float) -> int:
    """The controller's pod creates here answered `code` since `since` (the namespaces
    are the module's: earlier tests' requests do not count)."""
    records = cluster.requests.filter(
        namespace=namespace,
        verb="create",
        resource="pods",
        subresource="",
        code=code,
        user_agent=CONTROLLER_AGENT,
    )
    return sum(1 for record in records if record.started >= since)


def _denied(runs: Runs, name: str, timeout: float = 20.0) -> dict[str, Any]:
    status = runs.wait_finished(name, timeout)
    assert (status["phase"], status["reason"]) == ("Failed", "PolicyDenied"), status
    assert runs.pod(f"{name}-1") is None, "a denied TaskRun must never get a pod"
    return status


# (namespace, name, spec, what the message must say, pod creates refused with 403)
DENIED = [
    pytest.param(
        BASELINE_NS,
        "priv",
        {"containerSecurityContext": {"privileged": True}},
        ["spec.containers[base].securityContext.privileged"],
        0,
        id="baseline-controller-denies-privileged-before-any-pod",
    ),
    pytest.param(
        RESTRICTED_NS,
        "caps",
        {"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
        ["spec.containers[base].securityContext.capabilities.add"],
        0,
        id="restricted-controller-denies-sys-admin-before-any-pod",
    ),
    pytest.param(
        BASELINE_NS,
        "hostnet",
        {"hostNetwork": True},
        [PSA_WORDS, 'violates PodSecurity "baseline:latest"', "hostNetwork=true"],
        1,
        id="baseline-psa-refuses-host-network-the-policy-allows",
    ),
    pytest.param(
        RESTRICTED_NS,
        "plain",
        {},
        [PSA_WORDS, 'violates PodSecurity "restricted:latest"', "allowPrivilegeEscalation"],
        1,
        id="restricted-psa-refuses-a-plain-pod",
    ),
]


@pytest.mark.parametrize(("namespace", "name", "spec", "words", "refused"), DENIED)
def test_what_a_denied_taskrun_gets(
    cluster: Cluster,
    psa_controller: None,
    namespace: str,
    name: str,
    spec: dict[str, Any],
    words: list[str],
    refused: int,
) -> None:
    runs = Runs(cluster, namespace)
    since = time.time()
    runs.create(name, scenario={}, **spec)
    status = _denied(runs, name)
    for word in words:
        assert word in status["message"], f"{word!r} not in {status['message']!r}"
    if PSA_WORDS not in words:
        assert "PodSecurity" not in status["message"], status["message"]
    # A Pod Security refusal is final: one create refused, not a retry loop.
    assert _pod_creates(cluster, namespace, 403, since) == refused
    assert _pod_creates(cluster, namespace, 201, since) == 0


RESTRICTED_SPEC = {
    "securityContext": RESTRICTED_POD,
    "containerSecurityContext": RESTRICTED_CONTAINER,
}


@pytest.mark.parametrize(
    ("namespace", "name", "spec"),
    [
        pytest.param(BASELINE_NS, "ok", {}, id="baseline-admits-a-plain-pod"),
        pytest.param(BASELINE_NS, "xcom", {"doXcomPush": True}, id="baseline-admits-xcom"),
        pytest.param(RESTRICTED_NS, "ok", RESTRICTED_SPEC, id="restricted-admits-a-compliant-pod"),
        # The sidecar follows the base container: Restricted, as user 1000 (docs/security.md).
        pytest.param(
            RESTRICTED_NS,
            "xcom",
            {**RESTRICTED_SPEC, "doXcomPush": True},
            id="restricted-admits-xcom",
        ),
    ],
)
def test_what_an_admitted_taskrun_gets(
    cluster: Cluster, psa_controller: None, namespace: str, name: str, spec: dict[str, Any]
) -> None:
    runs = Runs(cluster, namespace)
    xcom = bool(spec.get("doXcomPush"))
    scenario = {"files": {XCOM_RESULT_PATH: '{"ok": 1}'}} if xcom else {}
    runs.create(name, scenario=scenario, **{"doXcomPush": False, **spec})
    status = runs.wait_finished(name, 30)
    assert status["phase"] == "Succeeded", status
    if xcom:
        assert status["result"] == '{"ok": 1}', status
