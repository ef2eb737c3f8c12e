"""A result sidecar the operator configured out of Restricted: the refusal names it.

With `--xcom-sidecar-security-context '{}'` the controller gives the sidecar no context of
its own (docs/security.md), so a namespace enforcing `restricted` refuses the pod even
when the TaskRun's own container is compliant. The TaskRun must say which container and
which fields, once, with no retry and no pod. Real API server only (devcluster has no
Pod Security Admission); a module of its own because it runs its own controller.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from testcluster import Cluster
from tests.integration.conftest import CONTROLLER_AGENT, Runs, run_controller

ENFORCE = "pod-security.kubernetes.io/enforce"
NAMESPACE = "psa-restricted-sidecar"
RESTRICTED_SPEC = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containerSecurityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    },
}


@pytest.fixture(scope="module")
def sidecar_off_controller(cluster: Cluster) -> Iterator[None]:
    if cluster.flavor == "devcluster":
        pytest.skip("devcluster has no Pod Security Admission (docs/devcluster.md)")
    cluster.create_namespace(NAMESPACE, {ENFORCE: "restricted"})
    with run_controller(cluster, xcom_sidecar_security_context={}):
        yield


def test_a_sidecar_without_a_context_is_refused_by_name(
    cluster: Cluster, sidecar_off_controller: None
) -> None:
    runs = Runs(cluster, NAMESPACE)
    since = time.time()
    runs.create("xcom", scenario={}, doXcomPush=True, **RESTRICTED_SPEC)
    status = runs.wait_finished("xcom", 20)
    assert (status["phase"], status["reason"]) == ("Failed", "PolicyDenied"), status
    for word in (
        "the cluster's Pod Security admission refused the pod",
        'violates PodSecurity "restricted:latest"',
        'container "airflow-xcom-sidecar" must set securityContext.allowPrivilegeEscalation',
    ):
        assert word in status["message"], f"{word!r} not in {status['message']!r}"
    # Only the sidecar is named: the TaskRun's own container is compliant.
    assert '"base"' not in status["message"], status["message"]
    assert runs.pod("xcom-1") is None
    creates = [
        record.code
        for record in cluster.requests.filter(
            namespace=NAMESPACE, verb="create", resource="pods", user_agent=CONTROLLER_AGENT
        )
        if record.started >= since and record.subresource == ""
    ]
    assert creates == [403], creates
