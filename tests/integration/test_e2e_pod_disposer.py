"""The pod delete after the terminal status leaves the worker (controller/disposer.py) and is
never lost: a refused one is decided again, and it never comes before the status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller import metrics
from testcluster import ApiError, Cluster
from tests.integration.conftest import CONTROLLER_AGENT, Runs, poll, run_controller

FAULTS = "refuses the controller's pod deletes with injected 403s (devcluster.faults)"


@pytest.fixture
def faults(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    cluster.devcluster.faults.clear()


def refuse_pod_deletes(cluster: Cluster, namespace: str) -> None:
    """403: the client does not retry it, so only the disposer's own retry can."""
    plan = cluster.devcluster.faults
    plan.user_agent_prefix = CONTROLLER_AGENT
    plan.namespaces = frozenset({namespace})
    plan.resources = frozenset({"pods"})
    plan.verbs = frozenset({"delete"})
    plan.error_codes = (403,)
    plan.error_rate = 1.0


def pod_deletes(cluster: Cluster, namespace: str, **filters: object) -> int:
    return cluster.requests.count(
        namespace=namespace, verb="delete", resource="pods", user_agent=CONTROLLER_AGENT, **filters
    )


@pytest.mark.devcluster_only(FAULTS)
def test_a_refused_pod_delete_is_decided_again_and_the_pod_goes(faults: Cluster, runs: Runs):
    failed_before = metrics.METRICS.pod_deletes_failed._value.get()
    refuse_pod_deletes(faults, runs.namespace)
    with run_controller(faults):
        runs.create("r", scenario={"exitCode": 0})
        status = runs.wait_finished("r")
        poll(lambda: pod_deletes(faults, runs.namespace, code=403), what="the refused delete")
        # Refused once: the next try comes after the disposer's backoff (1 s), by which
        # time the API server takes it.
        faults.devcluster.faults.clear()
        poll(lambda: runs.pod("r-1") is None, timeout=10, what="the pod to go after the refusal")
        assert runs.status("r") == status
    assert pod_deletes(faults, runs.namespace, code=403) == 1
    assert status["phase"] == "Succeeded"
    assert runs.pod_creates() == 1
    assert metrics.METRICS.pod_deletes_failed._value.get() - failed_before == 1


def test_the_pod_delete_comes_after_the_terminal_status(cluster: Cluster, runs: Runs):
    if not cluster.has_requests:
        pytest.skip("needs the cluster's request log (an audit log) to order the writes")
    with run_controller(cluster):
        runs.create("r", scenario={"exitCode": 3})
        status = runs.wait_finished("r")
        poll(lambda: runs.pod("r-1") is None, timeout=10, what="the pod to go")
    assert (status["phase"], status["exitCode"]) == ("Failed", 3)
    writes = [(w.verb, w.resource) for w in runs.writes() if w.resource in ("pods", "taskruns")]
    assert writes[-1] == ("delete", "pods"), writes
    assert writes.count(("delete", "pods")) == 1, writes
    assert runs.pod_creates() == 1


def test_every_attempts_pod_goes_retried_and_final(cluster: Cluster, runs: Runs):
    """A retried attempt's pod is deleted on the worker, the last one beside it: both go."""
    backoff = {"initialSeconds": 1, "maxSeconds": 1}
    with run_controller(cluster):
        runs.create("r", scenario={"exitCode": 1}, retries=1, retryBackoff=backoff)
        status = runs.wait_finished("r", timeout=15)
        poll(lambda: not runs.pods(), timeout=10, what="both attempts' pods to go")
    assert (status["phase"], status["attempts"]) == ("Failed", 2)
    assert runs.pod_creates() == 2


def refusing_policy(namespace: str) -> tuple[dict, dict]:
    """A ValidatingAdmissionPolicy, and its binding, that refuse every pod DELETE in
    ``namespace`` with a 403: kube-apiserver's own knob for what devcluster's fault plan
    does."""
    name = f"refuse-pod-deletes-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["DELETE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "validations": [
                {"expression": "false", "message": "refused by the test", "reason": "Forbidden"}
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return policy, binding


class Probe:
    """Whether the API server refuses pod deletes in a namespace yet: a probe pod is made
    and deleted until its delete is refused (a policy takes effect a moment after it is
    made). A dry-run delete would not do: kube-apiserver deleted the pod anyway."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.made = 0

    def refused(self) -> bool:
        name = f"probe-{self.made}"
        if self.cluster.get_or_none("pods", self.namespace, name) is None:
            self.made += 1
            name = f"probe-{self.made}"
            self.cluster.create("pods", self.namespace, probe_pod(name))
        try:
            self.cluster.delete("pods", self.namespace, name, grace_period=0)
        except ApiError as err:
            return err.code == 403
        return False


def probe_pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }


def test_a_pod_delete_refused_by_admission_is_decided_again(cluster: Cluster, runs: Runs):
    """The real API server's refusal (a ValidatingAdmissionPolicy, then lifted): the pod goes."""
    if cluster.flavor == "devcluster":
        pytest.skip("devcluster has no ValidatingAdmissionPolicy (the fault plan test covers it)")
    policy, binding = refusing_policy(runs.namespace)
    probe = Probe(cluster, runs.namespace)
    cluster.create("validatingadmissionpolicies", None, policy)
    try:
        cluster.create("validatingadmissionpolicybindings", None, binding)
        poll(probe.refused, timeout=30, what="the policy to refuse pod deletes")
        with run_controller(cluster):
            runs.create("r", scenario={"exitCode": 0})
            status = runs.wait_finished("r", timeout=30)
            poll(
                lambda: pod_deletes(cluster, runs.namespace, code=403),
                timeout=15,
                what="the controller's delete to be refused",
            )
            assert runs.pod("r-1") is not None
            cluster.delete("validatingadmissionpolicybindings", None, binding["metadata"]["name"])
            poll(lambda: runs.pod("r-1") is None, timeout=60, what="the pod to go after all")
            assert runs.status("r") == status
    finally:
        name = binding["metadata"]["name"]
        cluster.delete("validatingadmissionpolicybindings", None, name, missing_ok=True)
        cluster.delete("validatingadmissionpolicies", None, name, missing_ok=True)
    assert status["phase"] == "Succeeded"
    assert runs.pod_creates() == 1
