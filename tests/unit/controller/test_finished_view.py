"""finished_view: a finished TaskRun cut down for the cache decides exactly as the whole one."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.actions import CoreSettings, DeletePod, Observation
from controller.core.clock import parse_time
from controller.core.disposal import finished_view
from controller.core.podsettings import PodSettings
from controller.core.policies import decide
from taskrun.api import ANNOTATION_HOLD_POD, ANNOTATION_LOGS_ACKED, ANNOTATION_LOGS_FROM_STATUS
from tests.unit.controller.test_status import T0, pod, running, taskrun, terminated

NOW = parse_time(T0)
FINISHED = ["Succeeded", "Failed", "Skipped", "Cancelled"]

statuses = st.fixed_dictionaries(
    {
        "phase": st.sampled_from(FINISHED),
        "reason": st.sampled_from(["Succeeded", "Failed", "Cancelled", "DeadlineExceeded"]),
        "podName": st.just("run-1"),
        "attempts": st.integers(1, 3),
        "startTime": st.just(T0),
        "completionTime": st.sampled_from([T0, "2026-01-01T00:00:30Z"]),
        "exitCode": st.integers(0, 255),
        "result": st.just({"answer": 42, "big": "x" * 2000}),
        "logs": st.sampled_from(
            [
                {"container": "base", "tail": "line\n" * 200},
                {"pod": "run-1", "tail": "line\n" * 20, "truncated": False, "complete": True},
                {"pod": "run-1", "tail": "line\n", "truncated": True, "complete": False},
                {"pod": "run-0", "tail": "line\n", "complete": True},
            ]
        ),
        "conditions": st.just([{"type": "Succeeded", "status": "True", "lastTransitionTime": T0}]),
        "history": st.just([{"attempt": 1, "podName": "run-1"}]),
    }
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "onFinishAction": st.sampled_from(["delete_pod", "keep_pod", "delete_succeeded_pod"]),
        "ttlSecondsAfterFinished": st.integers(0, 120),
        "terminationGracePeriod": st.integers(0, 60),
        "doXcomPush": st.booleans(),
        "baseContainerName": st.sampled_from(["base", "main"]),
        "cmds": st.just(["sh", "-c", "echo hi"]),
        "labels": st.just({"team": "data"}),
        "env": st.just([{"name": "A", "value": "1"}]),
    },
)
annotations = st.dictionaries(
    st.sampled_from(
        [
            ANNOTATION_HOLD_POD,
            ANNOTATION_LOGS_ACKED,
            ANNOTATION_LOGS_FROM_STATUS,
            "kubectl.kubernetes.io/last-applied",
        ]
    ),
    st.sampled_from(["true", "false", "{...}"]),
)
pods = st.one_of(
    st.none(),
    st.builds(
        lambda phase, deleting, code: _pod(phase, deleting, code),
        st.sampled_from(["Running", "Succeeded", "Failed"]),
        st.booleans(),
        st.integers(0, 1),
    ),
)


def _pod(phase: str, deleting: bool, code: int) -> dict[str, Any]:
    base = running() if phase == "Running" else terminated(code)
    the_pod = pod(phase, base=base)
    if deleting:
        the_pod["metadata"]["deletionTimestamp"] = T0
    return the_pod


@settings(max_examples=300, deadline=None)
@given(
    status=statuses,
    spec=specs,
    notes=annotations,
    the_pod=pods,
    later=st.integers(0, 600),
    mode=st.sampled_from(["native", "exec"]),
)
def test_a_finished_taskrun_decides_the_same_cut_down(
    status: dict[str, Any],
    spec: dict[str, Any],
    notes: dict[str, str],
    the_pod: dict[str, Any] | None,
    later: int,
    mode: str,
) -> None:
    whole = taskrun(status, annotations=notes or None, **spec)
    whole["metadata"]["resourceVersion"] = "7"
    view = finished_view(whole)
    now = NOW + timedelta(seconds=later)
    core = CoreSettings(pod=PodSettings(xcom_mode=mode))
    assert decide(Observation(view, the_pod, now), core) == decide(
        Observation(whole, the_pod, now), core
    )
    # What the cache needs to find the pod, order events and count phases is kept.
    assert view["metadata"]["uid"] == whole["metadata"]["uid"]
    assert view["metadata"]["resourceVersion"] == "7"
    assert view["status"]["podName"] == "run-1"
    assert view["status"]["phase"] == status["phase"]
    # ... and what makes a finished run heavy is not.
    assert "result" not in view["status"] and "logs" not in view["status"]
    assert "kubectl.kubernetes.io/last-applied" not in view["metadata"].get("annotations", {})


@given(phase=st.sampled_from([None, "Pending", "Running"]))
def test_an_unfinished_taskrun_is_kept_whole(phase: str | None) -> None:
    whole = taskrun({"phase": phase} if phase else None)
    assert finished_view(whole) is whole


@pytest.mark.parametrize("complete", [True, False])
def test_a_whole_log_in_status_is_decided_the_same_cut_down(complete: bool) -> None:
    # Rare among the generated cases above: a hold its reader no longer needs.
    status = {
        "phase": "Succeeded",
        "podName": "run-1",
        "completionTime": T0,
        "logs": {"pod": "run-1", "tail": "done\n", "complete": complete},
    }
    notes = {ANNOTATION_HOLD_POD: "true", ANNOTATION_LOGS_FROM_STATUS: "true"}
    whole = taskrun(status, annotations=notes)
    view = finished_view(whole)
    obs = Observation(view, _pod("Succeeded", False, 0), NOW + timedelta(seconds=10))
    decision = decide(obs, CoreSettings())
    assert decision == decide(replace(obs, taskrun=whole), CoreSettings())
    assert any(isinstance(a, DeletePod) for a in decision.actions) is complete
