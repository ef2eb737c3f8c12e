"""core/earlier.py through policies.decide: every reconcile sees to the pods earlier attempts
left (a refused delete, a restart between the Retrying status and the delete), and a pod that
may still run is deleted before the next attempt's pod is created."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.actions import (
    CoreSettings,
    CreatePod,
    Decision,
    DeletePod,
    EmitEvent,
    Gathered,
    Observation,
    PatchStatus,
    StopSidecar,
)
from controller.core.clock import parse_time
from controller.core.earlier import DELETE_REFUSED_EVENT, held_message
from controller.core.policies import decide
from taskrun.api import LABEL_ATTEMPT
from tests.unit.controller.test_status import T0, pod, running, taskrun, terminated

NOW = parse_time(T0)
BACKOFF = {"initialSeconds": 10, "maxSeconds": 10}
HISTORY_1 = [
    {"attempt": 1, "podName": "run-1", "completionTime": T0, "phase": "Failed", "reason": "X"}
]
RETRYING = {
    "phase": "Pending",
    "reason": "Retrying",
    "podName": "run-1",
    "attempts": 1,
    "startTime": T0,
    "history": HISTORY_1,
}
RUNNING_2 = {**RETRYING, "phase": "Running", "reason": "Running", "podName": "run-2", "attempts": 2}
FINISHED = {
    **RUNNING_2,
    "phase": "Failed",
    "reason": "ExitCode",
    "completionTime": T0,
    "history": [*HISTORY_1, {"attempt": 2, "podName": "run-2", "phase": "Failed"}],
}


def labelled(the_pod: dict[str, Any], attempt: int | None) -> dict[str, Any]:
    if attempt is not None:
        the_pod["metadata"]["labels"] = {LABEL_ATTEMPT: str(attempt)}
    return the_pod


def old_pod(state: str, attempt: int | None = 1, name: str = "run-1") -> dict[str, Any]:
    """Attempt 1's pod: still running (a deadline ended its attempt), done, or going."""
    if state == "running":
        made = pod("Running", name=name, base=running(), uid="old-uid")
    elif state == "done":
        made = pod("Failed", name=name, base=terminated(1), uid="old-uid")
    else:
        made = pod("Running", name=name, base=running(), uid="old-uid", deleting=True)
    return labelled(made, attempt)


# The current attempt's situation: the TaskRun's status, its pod, the time.
CURRENT = {
    "backoff": (RETRYING, None, NOW + timedelta(seconds=5)),
    "due": (RETRYING, None, NOW + timedelta(seconds=10)),
    "running": (RUNNING_2, labelled(pod("Running", name="run-2", base=running()), 2), NOW),
    "finished": (FINISHED, labelled(pod("Failed", name="run-2", base=terminated(1)), 2), NOW),
}


def decide_with(
    current: str, others: tuple[dict[str, Any], ...], **spec: Any
) -> tuple[Decision, Decision]:
    """The decision without and with the other pods in the observation."""
    status, the_pod, now = CURRENT[current]
    tr = taskrun(status=status, retries=1, retryBackoff=BACKOFF, **spec)
    core = CoreSettings()
    bare = decide(Observation(tr, the_pod, now), core)
    return bare, decide(Observation(tr, the_pod, now, other_pods=others), core)


def deletes_of(decision: Decision, uid: str) -> list[int]:
    return [i for i, a in enumerate(decision.actions) if isinstance(a, DeletePod) and a.uid == uid]


def create_at(decision: Decision) -> int | None:
    found = [i for i, a in enumerate(decision.actions) if isinstance(a, CreatePod)]
    return found[0] if found else None


@pytest.mark.parametrize("current", list(CURRENT))
@pytest.mark.parametrize(
    ("earlier", "deleted", "before_create"),
    [
        (None, False, None),
        ("running", True, True),
        ("done", True, False),
        ("deleting", False, None),
    ],
)
def test_an_earlier_attempts_pod_is_deleted_whatever_the_current_attempt_does(
    current, earlier, deleted, before_create
):
    others = () if earlier is None else (old_pod(earlier),)
    bare, decision = decide_with(current, others)
    # The current attempt's own decision is unchanged; only the old pod's delete is added.
    rest = [a for a in decision.actions if not (isinstance(a, DeletePod) and a.uid == "old-uid")]
    assert rest == bare.actions
    assert decision.wake_at == bare.wake_at
    assert bool(deletes_of(decision, "old-uid")) == deleted
    assert len(deletes_of(decision, "old-uid")) <= 1
    created = create_at(decision)
    assert (created is not None) == (current == "due")
    if deleted and created is not None:
        assert (deletes_of(decision, "old-uid")[0] < created) == before_create


def test_a_decision_that_reads_waits_for_the_reads_and_then_deletes():
    """The current attempt ends: its pod is read first; the old pod's delete comes with the
    decision after the reads, after its status write."""
    tr = taskrun(status=RUNNING_2, retries=1, retryBackoff=BACKOFF)
    ended = labelled(pod("Failed", name="run-2", base=terminated(1)), 2)
    others = (old_pod("running"),)
    first = decide(Observation(tr, ended, NOW, other_pods=others), CoreSettings())
    assert first.reads and not first.actions
    then = decide(
        Observation(tr, ended, NOW, gathered=Gathered(), other_pods=others), CoreSettings()
    )
    assert deletes_of(then, "old-uid")


@pytest.mark.parametrize(
    ("action", "state", "deleted"),
    [
        ("keep_pod", "done", False),
        ("keep_pod", "running", True),
        ("delete_succeeded_pod", "done", False),
        ("delete_succeeded_pod", "running", True),
        ("delete_pod", "done", True),
    ],
)
def test_the_finish_action_keeps_a_stopped_earlier_pod_never_a_running_one(action, state, deleted):
    _, decision = decide_with("running", (old_pod(state),), onFinishAction=action)
    assert bool(deletes_of(decision, "old-uid")) == deleted


@pytest.mark.parametrize(
    ("current", "attempt", "name", "deleted"),
    [
        ("running", 3, "run-3", False),  # a later attempt's pod: not judged here
        ("running", 2, "run-2-old", False),  # the current attempt's under another name
        ("running", None, "run-1", True),  # no attempt label: its name is in the history
        ("running", None, "stray", False),
        ("finished", None, "stray", True),  # a finished run makes no more pods
        ("finished", 3, "run-3", True),
    ],
)
def test_only_pods_of_attempts_already_recorded_are_deleted(current, attempt, name, deleted):
    _, decision = decide_with(current, (old_pod("running", attempt, name),))
    assert bool(deletes_of(decision, "old-uid")) == deleted


def test_the_grace_period_of_the_spec_is_used():
    _, decision = decide_with("running", (old_pod("running"),), terminationGracePeriod=7)
    (i,) = deletes_of(decision, "old-uid")
    action = decision.actions[i]
    assert isinstance(action, DeletePod)
    assert (action.name, action.grace_seconds) == ("run-1", 7)


STATES = st.sampled_from(["running", "done", "deleting"])


@settings(max_examples=200, deadline=None)
@given(
    current=st.sampled_from(list(CURRENT)),
    pods=st.lists(
        st.tuples(STATES, st.one_of(st.none(), st.integers(1, 4))), min_size=0, max_size=4
    ),
    action=st.sampled_from(["delete_pod", "keep_pod", "delete_succeeded_pod"]),
)
def test_no_running_earlier_pod_is_left_beside_a_new_one(current, pods, action):
    others = tuple(
        {**p, "metadata": {**p["metadata"], "uid": f"u{i}", "name": f"p{i}"}}
        for i, p in enumerate(old_pod(state, attempt) for state, attempt in pods)
    )
    status, _, _ = CURRENT[current]
    finished = status["phase"] == "Failed"
    attempt_now = len(status["history"]) + 1
    _, decision = decide_with(current, others, onFinishAction=action)
    created = create_at(decision)
    for i, (state, attempt) in enumerate(pods):
        deletes = deletes_of(decision, f"u{i}")
        earlier = finished or (attempt is not None and attempt < attempt_now)
        assert len(deletes) <= 1
        if state == "deleting" or not earlier:
            assert not deletes
        elif state == "running":
            assert deletes
            if created is not None:
                assert deletes[0] < created
        else:
            assert bool(deletes) == (action == "delete_pod")
    assert not any(isinstance(a, StopSidecar) for a in decision.actions)


# --- a refused delete of a running earlier pod (Observation.delete_refused) ----------------

WORDS = '403 Forbidden: pods "run-1" is forbidden: deletes are refused here'


def decide_refused(
    current: str, earlier: str, refused: tuple[str, str] | None, message: str | None = None
) -> Decision:
    status, the_pod, now = CURRENT[current]
    if message is not None:
        status = {**status, "message": message}
    tr = taskrun(status=status, retries=1, retryBackoff=BACKOFF)
    obs = Observation(tr, the_pod, now, other_pods=(old_pod(earlier),), delete_refused=refused)
    return decide(obs, CoreSettings())


def patched_message(decision: Decision) -> str | None:
    patches = [a.patch for a in decision.actions if isinstance(a, PatchStatus)]
    return patches[0].get("message") if patches else None


def refusal_events(decision: Decision) -> list[EmitEvent]:
    return [a for a in decision.actions if isinstance(a, EmitEvent)]


@pytest.mark.parametrize("current", ["backoff", "due"])
def test_a_refused_delete_of_a_running_earlier_pod_says_why_the_next_attempt_waits(current):
    decision = decide_refused(current, "running", ("run-1", WORDS))
    message = held_message(taskrun(status=RETRYING), "run-1", WORDS)
    # names the pod, the API server's code and words, and that attempt 2 waits for it
    for part in ("pod run-1", "403 Forbidden", "deletes are refused here", "attempt 2"):
        assert part in message
    assert patched_message(decision) == message
    assert [(e.type, e.reason, e.message) for e in refusal_events(decision)] == [
        ("Warning", DELETE_REFUSED_EVENT, message)
    ]
    # no create and no second try of the delete in this reconcile: it fails, backs off
    assert create_at(decision) is None
    assert not deletes_of(decision, "old-uid")


def test_the_same_refusal_again_writes_nothing_and_sends_no_event():
    message = held_message(taskrun(status=RETRYING), "run-1", WORDS)
    decision = decide_refused("due", "running", ("run-1", WORDS), message=message)
    assert decision.actions == []


def test_a_different_refusal_is_written_and_sent_again():
    message = held_message(taskrun(status=RETRYING), "run-1", WORDS)
    other = "500 InternalError: etcdserver: request timed out"
    decision = decide_refused("due", "running", ("run-1", other), message=message)
    assert patched_message(decision) == held_message(taskrun(status=RETRYING), "run-1", other)
    assert len(refusal_events(decision)) == 1


def test_once_the_refusal_is_lifted_the_delete_and_the_create_go_on():
    message = held_message(taskrun(status=RETRYING), "run-1", WORDS)
    decision = decide_refused("due", "running", None, message=message)
    created = create_at(decision)
    assert created is not None
    assert [i < created for i in deletes_of(decision, "old-uid")] == [True]
    assert not refusal_events(decision)


@pytest.mark.parametrize("current", ["running", "finished"])
def test_a_refused_delete_beside_a_current_pod_leaves_the_status_alone(current):
    """With the current attempt's pod there (or the run finished) nothing waits on the
    delete: the status is not rewritten; the executor's failed reconcile asks again."""
    bare, _ = decide_with(current, ())
    decision = decide_refused(current, "running", ("run-1", WORDS))
    assert decision.actions == bare.actions


def test_an_earlier_pod_that_stopped_no_longer_holds_the_create():
    """Its own activeDeadlineSeconds (or its end) stops it: the create goes on, and the
    refused delete, now after the create, is left to the next reconcile."""
    decision = decide_refused("due", "done", ("run-1", WORDS))
    assert create_at(decision) is not None
    assert not deletes_of(decision, "old-uid")
    assert not refusal_events(decision)
