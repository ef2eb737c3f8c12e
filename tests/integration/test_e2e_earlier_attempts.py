"""A retried attempt's pod is never left behind (controller/core/earlier.py): its delete,
refused once, is decided again by the reconciles after the Retrying status, and the next
attempt's pod is created only once the old one's delete was accepted, so the run never has
two live pods."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from controller.core.earlier import DELETE_REFUSED_EVENT
from testcluster import Cluster
from tests.integration.conftest import Runs, poll, run_controller
from tests.integration.test_e2e_pod_disposer import (
    Probe,
    pod_deletes,
    refuse_pod_deletes,
    refusing_policy,
)

BACKOFF = {"initialSeconds": 1, "maxSeconds": 1}


@contextlib.contextmanager
def refusing_deletes(cluster: Cluster, namespace: str) -> Iterator[Callable[[], None]]:
    """Pod deletes in ``namespace`` are refused with a 403 until the yielded call lifts it:
    devcluster's fault plan, or a ValidatingAdmissionPolicy on a real API server."""
    if cluster.flavor == "devcluster":
        refuse_pod_deletes(cluster, namespace)
        try:
            yield cluster.devcluster.faults.clear
        finally:
            cluster.devcluster.faults.clear()
        return
    policy, binding = refusing_policy(namespace)
    name = binding["metadata"]["name"]
    probe = Probe(cluster, namespace)
    cluster.create("validatingadmissionpolicies", None, policy)
    try:
        cluster.create("validatingadmissionpolicybindings", None, binding)
        poll(probe.refused, timeout=30, what="the policy to refuse pod deletes")
        yield lambda: cluster.delete("validatingadmissionpolicybindings", None, name)
    finally:
        cluster.delete("validatingadmissionpolicybindings", None, name, missing_ok=True)
        cluster.delete("validatingadmissionpolicies", None, name, missing_ok=True)


def run_pods(runs: Runs) -> list[str]:
    """The run's pods (a real cluster's probe pods left out)."""
    return sorted(
        p["metadata"]["name"] for p in runs.pods() if p["metadata"]["name"].startswith("r-")
    )


def test_an_earlier_attempts_refused_delete_is_decided_again_before_the_next_pod(
    cluster: Cluster, runs: Runs
):
    """Attempt 1 ends by its startup timeout while its pod still starts (it would run a
    minute); its delete is refused: it is asked again, attempt 2's pod waits for it, and once
    the API server takes the delete the run goes on with one pod at a time."""
    if not cluster.has_requests:
        pytest.skip("needs the cluster's request log (an audit log) to order the writes")
    with refusing_deletes(cluster, runs.namespace) as lift, run_controller(cluster):
        runs.create(
            "r",
            scenario={"startDelaySeconds": 60, "runSeconds": 60},
            startupTimeoutSeconds=1,
            retries=1,
            retryBackoff=BACKOFF,
            terminationGracePeriod=0,
        )
        # Refused, then decided again (the work queue's backoff: 1 s) by a reconcile after
        # the Retrying status: before the fix, no second try ever came for attempt 1's pod.
        poll(
            lambda: pod_deletes(cluster, runs.namespace, name="r-1", code=403) >= 2,
            timeout=20,
            what="attempt 1's pod delete to be refused, then asked again",
        )
        # While the refusal lasts the status says why attempt 2 waits: the pod, the API
        # server's code, and the wait; one Warning Event, not one per retry.
        # (The Retrying status before it names r-1 too: wait for the words of the refusal.)
        status = poll(
            lambda: (s := runs.status("r")) and "refused" in (s.get("message") or "") and s,
            timeout=20,
            what="the status to say the delete of r-1 is refused",
        )
        assert (status["reason"], status["history"][0]["reason"]) == (
            "Retrying",
            "StartupTimeout",
        ), status
        for part in ("pod r-1", "403", "attempt 2's pod waits"):
            assert part in status["message"], status["message"]
        poll(
            lambda: pod_deletes(cluster, runs.namespace, name="r-1", code=403) >= 3,
            timeout=20,
            what="a further refused delete",
        )
        assert runs.status("r")["message"] == status["message"]
        refused = [e for e in runs.events() if e.get("reason") == DELETE_REFUSED_EVENT]
        assert [(e["type"], e.get("count") or 1) for e in refused] == [("Warning", 1)], refused
        assert run_pods(runs) == ["r-1"]
        lift()
        status = runs.wait_finished("r", timeout=60)
        poll(lambda: not run_pods(runs), timeout=30, what="both attempts' pods to go")
    assert (status["phase"], status["reason"], status["attempts"]) == (
        "Failed",
        "StartupTimeout",
        2,
    )
    assert runs.pod_creates() == 2
    writes = [
        (w.verb, w.name, w.code)
        for w in runs.writes()
        if w.resource == "pods" and not w.subresource and w.code < 300
    ]
    creates = [i for i, (verb, _, _) in enumerate(writes) if verb == "create"]
    first_delete = writes.index(next(w for w in writes if w[:2] == ("delete", "r-1")))
    # attempt 2's pod came only after attempt 1's pod was asked to go, and was accepted
    assert len(creates) == 2
    assert creates[0] < first_delete < creates[1], writes
