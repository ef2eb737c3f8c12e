"""Issue 13 item 6: a TaskRun whose pod the API server refuses says so, and ends.

Seen with a pod template naming a service account missing from the namespace: the create
was answered 403 and retried forever, and the TaskRun showed nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from controller.core.actions import CreatePod, EmitEvent, Observation, PatchStatus
from controller.core.clock import parse_time
from controller.core.policies import decide
from controller.core.refusals import create_can_heal
from controller.core.security import PolicySet
from controller.handlers import Controller
from testcluster import Cluster
from tests.integration.conftest import Runs, poll, run_controller
from tests.unit.controller.test_policies import SETTINGS

ANY_ACCOUNT = PolicySet.from_dict({"default": {"allowedServiceAccounts": ["*"]}})
MISSING = 'serviceaccount "ghost" not found'


@pytest.fixture(scope="module")
def lenient(cluster: Cluster) -> Iterator[Controller]:
    """A controller whose policy allows any service account: the cluster decides."""
    with run_controller(cluster, security_policy=ANY_ACCOUNT) as running:
        yield running


def events_of(runs: Runs, name: str) -> list[dict]:
    items = runs.events()
    return [e for e in items if e["involvedObject"].get("name") == name]


def test_a_missing_service_account_shows_then_ends_the_run(lenient: Controller, runs: Runs):
    runs.create(
        "ghost",
        startupTimeoutSeconds=3,
        serviceAccountName="ghost",
    )
    pending = runs.wait_status("ghost", lambda s: s.get("reason") == "FailedCreate")
    assert pending["phase"] == "Pending"
    assert MISSING in pending["message"]
    condition = pending["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("Unknown", "FailedCreate")
    poll(
        lambda: any(
            e["type"] == "Warning" and e["reason"] == "FailedCreate" and MISSING in e["message"]
            for e in events_of(runs, "ghost")
        ),
        what="a Warning FailedCreate event",
    )
    final = runs.wait_finished("ghost", timeout=10)
    assert (final["phase"], final["reason"]) == ("Failed", "CreateTimeout"), final
    assert "startupTimeoutSeconds (3)" in final["message"]
    assert MISSING in final["message"]
    assert final["conditions"][0]["status"] == "False"
    assert runs.pods() == []
    # backed off, not hammered: tries at about 0, 1, 2 and 3 seconds
    tries = runs.cluster.requests.count(namespace=runs.namespace, verb="create", resource="pods")
    assert 2 <= tries <= 8, tries


def test_a_refusal_that_heals_lets_the_run_go_on(lenient: Controller, runs: Runs):
    runs.create(
        "late-account",
        startupTimeoutSeconds=30,
        serviceAccountName="late",
    )
    runs.wait_status("late-account", lambda s: s.get("reason") == "FailedCreate")
    account = {"metadata": {"name": "late", "namespace": runs.namespace}}
    runs.cluster.create("serviceaccounts", runs.namespace, account)
    final = runs.wait_finished("late-account", timeout=10)
    assert final["phase"] == "Succeeded", final


@pytest.mark.parametrize(
    ("status", "heals"),
    [
        (403, True),
        (404, True),
        (400, True),
        (422, True),
        (401, False),
        (409, False),
        (429, False),
        (408, False),
        (500, False),
        (0, False),
    ],
)
def test_which_refusals_are_shown_and_tried_again(status: int, heals: bool):
    # 400 and 422 never get here: create_refusal makes them InvalidSpec first.
    assert create_can_heal(status) is heals


T0 = parse_time("2026-01-01T00:00:00Z")
TASKRUN = {
    "apiVersion": "taskrun.dev/v1alpha1",
    "kind": "TaskRun",
    "metadata": {
        "name": "r",
        "namespace": "ns",
        "uid": "u",
        "generation": 1,
        "creationTimestamp": T0.strftime("%Y-%m-%dT%H:%M:%SZ"),
    },
    "spec": {"image": "busybox", "startupTimeoutSeconds": 10},
}
WORDS = "the API server refused the pod (403 Forbidden): exceeded quota: compute"


@pytest.mark.parametrize(
    ("after", "reason", "wake_in"),
    [
        (0, "FailedCreate", 1),
        (1, "FailedCreate", 1),
        (4, "FailedCreate", 4),
        (8, "FailedCreate", 2),
        (10, "CreateTimeout", None),
        (99, "CreateTimeout", None),
    ],
)
def test_refused_create_table(after: int, reason: str, wake_in: float | None):
    now = T0 + timedelta(seconds=after)
    decision = decide(Observation(TASKRUN, None, now, create_refused=WORDS), SETTINGS)
    patch = next(a.patch for a in decision.actions if isinstance(a, PatchStatus))
    assert patch["reason"] == reason
    assert WORDS in patch["message"]
    assert any(
        isinstance(a, EmitEvent) and a.type == "Warning" and a.reason == reason
        for a in decision.actions
    )
    if wake_in is None:
        assert patch["phase"] == "Failed"
    else:
        assert patch["phase"] == "Pending"
        assert decision.wake_at == now + timedelta(seconds=wake_in)
    # the next wake tries the create again
    if wake_in is not None:
        again = decide(Observation(TASKRUN, None, decision.wake_at), SETTINGS)
        assert [type(a) for a in again.actions] == [CreatePod]
