"""status: pod -> outcome, the Succeeded condition, and status patches.

The pod and TaskRun builders at the top are shared with the policy and timeout tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core.clock import parse_time
from controller.core.outcome import is_transient_pull_message, pod_outcome
from controller.core.status import condition_status, status_patch, succeeded_condition, with_phase
from taskrun.api import Phase, Reason, TaskRunSpec

T0 = "2026-01-01T00:00:00Z"
UID = "tr-uid"


def running() -> dict[str, Any]:
    return {"running": {"startedAt": T0}}


def terminated(code: int, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else "Error"),
    }
    if message is not None:
        state["message"] = message
    return {"terminated": state}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


def pod(
    phase: str = "Running",
    *,
    name: str = "run-1",
    base: dict[str, Any] | None = None,
    sidecar: dict[str, Any] | None = None,
    reason: str | None = None,
    message: str | None = None,
    scheduled: bool | str = True,
    created: str = T0,
    started: str | None = T0,
    extra: list[dict[str, Any]] | None = None,
    uid: str = "pod-uid",
    deleting: bool = False,
) -> dict[str, Any]:
    """A pod of TaskRun ``run``; ``base`` is the base container's state."""
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if started:
        status["startTime"] = started
    if scheduled is True:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": created}
        ]
    elif isinstance(scheduled, str):
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": scheduled,
            }
        ]
    if base is not None:
        status["containerStatuses"] = [{"name": "base", "state": base}, *(extra or [])]
    if sidecar is not None:
        status["initContainerStatuses"] = [{"name": "airflow-xcom-sidecar", "state": sidecar}]
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": uid,
        "creationTimestamp": created,
        "ownerReferences": [
            {
                "apiVersion": "taskrun.dev/v1alpha1",
                "kind": "TaskRun",
                "name": "run",
                "uid": UID,
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = created
    return {
        "metadata": meta,
        "spec": {"nodeName": "node"} if scheduled is True else {},
        "status": status,
    }


def taskrun(
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    name: str = "run",
    **spec: Any,
) -> dict[str, Any]:
    spec.setdefault("image", "busybox")
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": UID, "generation": 1}
    if annotations:
        meta["annotations"] = annotations
    body: dict[str, Any] = {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun"}
    body["metadata"] = meta
    body["spec"] = spec
    if status is not None:
        body["status"] = status
    return body


# --- tests ---------------------------------------------------------------------------------

SPEC = TaskRunSpec.model_validate({"image": "busybox", "skipOnExitCode": [99]})


@pytest.mark.parametrize(
    ("the_pod", "phase", "reason", "exit_code", "pod_done", "says"),
    [
        (
            pod("Pending", scheduled=False, started=None),
            "Pending",
            "PodCreated",
            None,
            False,
            "created",
        ),
        (
            pod("Pending", scheduled="0/1 nodes are available", started=None),
            "Pending",
            "Pending",
            None,
            False,
            "0/1 nodes are available",
        ),
        (pod("Running", base=running()), "Running", "Running", None, False, "is running"),
        (pod("Succeeded", base=terminated(0)), "Succeeded", "Succeeded", 0, True, "succeeded"),
        (pod("Failed", base=terminated(3)), "Failed", "ExitCode", 3, True, "exited with code 3"),
        (
            pod("Failed", base=terminated(1, message="disk full")),
            "Failed",
            "ExitCode",
            1,
            True,
            "disk full",
        ),
        (pod("Failed", base=terminated(99)), "Skipped", "Skipped", 99, True, "skipOnExitCode"),
        (
            pod("Failed", base=terminated(137, reason="OOMKilled")),
            "Failed",
            "OOMKilled",
            137,
            True,
            "out of memory",
        ),
        (
            pod("Failed", reason="Evicted", message="The node was low on resource: memory."),
            "Failed",
            "Evicted",
            None,
            True,
            "low on resource",
        ),
        (
            pod("Failed", reason="DeadlineExceeded", base=terminated(137)),
            "Failed",
            "DeadlineExceeded",
            137,
            True,
            "activeDeadlineSeconds",
        ),
        (pod("Unknown"), "Failed", "NodeLost", None, True, "node"),
        (
            pod("Failed", reason="NodeLost", message="gone"),
            "Failed",
            "NodeLost",
            None,
            True,
            "gone",
        ),
        (
            pod("Failed", base=terminated(0), extra=[{"name": "helper", "state": terminated(5)}]),
            "Failed",
            "ExitCode",
            0,
            True,
            "container helper exited with code 5",
        ),
        (
            pod("Pending", base=waiting("InvalidImageName", "bad ref")),
            "Failed",
            "ImagePullFailed",
            None,
            False,
            "InvalidImageName",
        ),
        (
            pod("Pending", base=waiting("ErrImageNeverPull")),
            "Failed",
            "ImagePullFailed",
            None,
            False,
            "ErrImageNeverPull",
        ),
        (
            pod("Pending", base=waiting("ErrImagePull", "manifest unknown")),
            "Failed",
            "ImagePullFailed",
            None,
            False,
            "manifest unknown",
        ),
        (
            pod("Pending", base=waiting("ImagePullBackOff", "429 Too Many Requests")),
            "Pending",
            "Pending",
            None,
            False,
            "container base is retrying its image pull",
        ),
        (
            pod("Pending", base=waiting("ContainerCreating")),
            "Pending",
            "PodCreated",
            None,
            False,
            "created",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_pod_outcome(the_pod, phase, reason, exit_code, pod_done, says):
    outcome = pod_outcome(the_pod, SPEC)
    assert (str(outcome.phase), str(outcome.reason)) == (phase, reason)
    assert outcome.exit_code == exit_code
    assert outcome.pod_done is pod_done
    assert says in outcome.message


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("rpc error: pull QPS exceeded", True),
        ("toomanyrequests: Too Many Requests", True),
        ("dial tcp: i/o timeout", True),
        ("503 Service Unavailable", True),
        ("you have reached your pull rate limit", True),
        ("manifest for busybox:nope not found: manifest unknown", False),
        ("pull access denied, repository does not exist", False),
        ("", False),
    ],
)
def test_transient_pull_messages_follow_kpo(message, transient):
    assert is_transient_pull_message(message) is transient


def test_skip_applies_to_the_base_container_only():
    spec = TaskRunSpec.model_validate({"image": "x", "skipOnExitCode": [2]})
    the_pod = pod("Failed", base=terminated(1), extra=[{"name": "helper", "state": terminated(2)}])
    assert pod_outcome(the_pod, spec).reason == Reason.EXIT_CODE


def test_base_container_name_is_honoured():
    spec = TaskRunSpec.model_validate({"image": "x", "baseContainerName": "main"})
    the_pod = pod("Failed")
    the_pod["status"]["containerStatuses"] = [
        {"name": "main", "state": terminated(7)},
        {"name": "base", "state": terminated(0)},
    ]
    assert pod_outcome(the_pod, spec).exit_code == 7


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (Phase.PENDING, "Unknown"),
        (Phase.RUNNING, "Unknown"),
        (Phase.SUCCEEDED, "True"),
        (Phase.SKIPPED, "True"),
        (Phase.FAILED, "False"),
        (Phase.CANCELLED, "False"),
    ],
)
def test_condition_status_per_phase(phase, expected):
    assert condition_status(phase) == expected


NOW = parse_time("2026-01-01T00:05:00Z")


def test_last_transition_time_kept_while_the_status_is_unchanged():
    previous = [
        {"type": "Succeeded", "status": "Unknown", "reason": "PodCreated", "lastTransitionTime": T0}
    ]
    same = succeeded_condition(Phase.RUNNING, "Running", "running", previous, NOW)
    moved = succeeded_condition(Phase.SUCCEEDED, "Succeeded", "done", previous, NOW)
    assert same["lastTransitionTime"] == T0
    assert same["reason"] == "Running"
    assert moved["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    assert moved["status"] == "True"


def test_with_phase_sets_completion_and_duration_when_finished():
    current = {"phase": "Running", "startTime": "2026-01-01T00:03:57Z"}
    desired = with_phase(current, Phase.SUCCEEDED, Reason.SUCCEEDED, "ok", NOW, exitCode=0)
    assert desired["completionTime"] == "2026-01-01T00:05:00Z"
    assert desired["duration"] == "1m3s"
    assert desired["exitCode"] == 0
    assert desired["conditions"][0]["status"] == "True"


def test_with_phase_removes_fields_given_as_none():
    desired = with_phase(
        {"exitCode": 3}, Phase.PENDING, Reason.RETRYING, "again", NOW, exitCode=None
    )
    assert "exitCode" not in desired
    assert "completionTime" not in desired


@pytest.mark.parametrize(
    ("current", "desired", "patch"),
    [
        ({}, {}, None),
        ({"phase": "Running"}, {"phase": "Running"}, None),
        ({"phase": "Pending"}, {"phase": "Running"}, {"phase": "Running"}),
        ({"phase": "Pending", "exitCode": 1}, {"phase": "Pending"}, {"exitCode": None}),
        (
            {"logs": {"pod": "a", "tail": "x"}},
            {"logs": {"pod": "a"}},
            {"logs": {"tail": None}},
        ),
        ({"history": [1]}, {"history": [1, 2]}, {"history": [1, 2]}),
    ],
)
def test_status_patch_is_the_merge_patch_of_the_difference(current, desired, patch):
    assert status_patch(current, desired) == patch


json_values = st.recursive(
    # Status values are never null: a merge patch could not say "set to null".
    st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(st.text(max_size=4), json_values, max_size=5),
    st.dictionaries(st.text(max_size=4), json_values, max_size=5),
)
def test_applying_the_patch_gives_the_desired_status(current, desired):
    patch = status_patch(current, desired)
    assert apply_merge_patch(current, patch or {}) == desired


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, the way the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
