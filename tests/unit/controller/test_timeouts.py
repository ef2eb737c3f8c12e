"""Schedule, startup and active deadlines: computed from pod timestamps, never from memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.core.actions import DeletePod, Gathered, Observation, PatchStatus
from controller.core.clock import format_time, parse_optional, parse_time
from controller.core.policies import decide
from tests.unit.controller.test_policies import RUNNING_STATUS, SETTINGS
from tests.unit.controller.test_status import T0, pod, running, taskrun, waiting

START = parse_time(T0)


def at(seconds: float):
    return START + timedelta(seconds=seconds)


def decide_at(tr, the_pod, seconds: float):
    # gathered is given so a timeout shows its status patch straight away
    return decide(Observation(tr, the_pod, at(seconds), gathered=Gathered()), SETTINGS)


def reason_of(decision) -> str | None:
    patches = [a.patch for a in decision.actions if isinstance(a, PatchStatus)]
    return patches[0].get("reason") if patches else None


UNSCHEDULED = pod("Pending", scheduled="0/1 nodes are available", started=None)
SCHEDULED = pod("Pending", base=waiting("ContainerCreating"), started=None)


@pytest.mark.parametrize(
    ("spec", "the_pod", "before", "due", "reason"),
    [
        ({"scheduleTimeoutSeconds": 30}, UNSCHEDULED, 29, 30, "ScheduleTimeout"),
        # KPO: the schedule timeout defaults to the startup timeout
        ({"startupTimeoutSeconds": 45}, UNSCHEDULED, 44, 45, "ScheduleTimeout"),
        ({"startupTimeoutSeconds": 20}, SCHEDULED, 19, 20, "StartupTimeout"),
        (
            {"activeDeadlineSeconds": 60, "startupTimeoutSeconds": 600},
            pod("Running", base=running()),
            59,
            60,
            "DeadlineExceeded",
        ),
    ],
)
def test_deadlines_wake_the_controller_and_end_the_attempt(spec, the_pod, before, due, reason):
    tr = taskrun(status=RUNNING_STATUS, **spec)
    early = decide_at(tr, the_pod, before)
    assert reason_of(early) != reason
    assert early.wake_at == at(due)
    late = decide_at(tr, the_pod, due)
    assert reason_of(late) == reason
    assert any(isinstance(a, DeletePod) for a in late.actions)


def test_the_startup_timeout_counts_from_scheduling_not_creation():
    the_pod = pod("Pending", base=waiting("ContainerCreating"), started=None)
    the_pod["status"]["conditions"][0]["lastTransitionTime"] = format_time(at(100))
    tr = taskrun(status=RUNNING_STATUS, startupTimeoutSeconds=20)
    assert reason_of(decide_at(tr, the_pod, 119)) != "StartupTimeout"
    assert reason_of(decide_at(tr, the_pod, 120)) == "StartupTimeout"


def test_a_running_pod_has_no_startup_timeout():
    tr = taskrun(status=RUNNING_STATUS, startupTimeoutSeconds=5)
    decision = decide_at(tr, pod("Running", base=running()), 3600)
    assert reason_of(decision) is None
    assert decision.wake_at is None


def test_the_active_deadline_counts_from_the_pods_start_time():
    the_pod = pod("Running", base=running(), started=format_time(at(50)))
    tr = taskrun(status=RUNNING_STATUS, activeDeadlineSeconds=10)
    assert decide_at(tr, the_pod, 59).wake_at == at(60)
    assert reason_of(decide_at(tr, the_pod, 60)) == "DeadlineExceeded"


def test_a_restarted_controller_computes_the_same_deadline():
    tr = taskrun(status=RUNNING_STATUS, scheduleTimeoutSeconds=30)
    # Two controllers that never shared memory: only the pod's timestamps count.
    first = decide(Observation(tr, UNSCHEDULED, at(5)), SETTINGS)
    second = decide(Observation(tr, UNSCHEDULED, at(25)), SETTINGS)
    assert first.wake_at == second.wake_at == at(30)


def test_the_earliest_deadline_wins():
    tr = taskrun(status=RUNNING_STATUS, scheduleTimeoutSeconds=100, activeDeadlineSeconds=10)
    the_pod = pod("Pending", scheduled="no nodes", started=None)
    assert decide_at(tr, the_pod, 1).wake_at == at(10)
    assert reason_of(decide_at(tr, the_pod, 10)) == "DeadlineExceeded"


def test_a_timed_out_run_with_retries_goes_again():
    tr = taskrun(status=RUNNING_STATUS, scheduleTimeoutSeconds=30, retries=1)
    decision = decide_at(tr, UNSCHEDULED, 30)
    assert reason_of(decision) == "Retrying"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.500000+00:00"),
        ("2026-01-01T00:00:00.123456789Z", "2026-01-01T00:00:00.123456+00:00"),
        ("2026-01-01T02:00:00+02:00", "2026-01-01T02:00:00+02:00"),
        ("2026-01-01T00:00:00", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_kubernetes_timestamps_parse(text, iso):
    assert parse_time(text).isoformat() == iso


@pytest.mark.parametrize("value", [None, "", "yesterday", 5])
def test_missing_or_malformed_timestamps_are_none(value):
    assert parse_optional(value) is None
