"""One TaskRun per policy and outcome, driven by the simulated kubelet's scenario."""

from __future__ import annotations

import pytest

from controller.handlers import Controller
from tests.integration.conftest import Runs, poll


@pytest.mark.parametrize(
    ("scenario", "spec", "phase", "reason", "exit_code"),
    [
        ({"exitCode": 42}, {"skipOnExitCode": [42]}, "Skipped", "Skipped", 42),
        ({"oomKilled": True}, {}, "Failed", "OOMKilled", 137),
        # cgroup v1: a child OOM-killed, the main process exited 0; the pod Succeeded.
        ({"oomKilled": True, "exitCode": 0}, {}, "Succeeded", "Succeeded", 0),
        ({"image": "InvalidImageName"}, {}, "Failed", "ImagePullFailed", None),
        ({"image": "ErrImageNeverPull"}, {}, "Failed", "ImagePullFailed", None),
        ({"image": "ErrImagePull:manifest unknown"}, {}, "Failed", "ImagePullFailed", None),
        ({"runSeconds": 5, "evictAfterSeconds": 0.2}, {}, "Failed", "Evicted", 137),
        ({"runSeconds": 5, "nodeLostAfterSeconds": 0.2}, {}, "Failed", "NodeLost", None),
        # KPO: a transient pull error is waited out until the startup timeout
        (
            {"image": "ErrImagePull:429 Too Many Requests"},
            {"startupTimeoutSeconds": 1},
            "Failed",
            "StartupTimeout",
            None,
        ),
        # No node has the label: devcluster's scheduler and kube-scheduler both say so.
        (
            {},
            {"scheduleTimeoutSeconds": 1, "nodeSelector": {"taskrun.dev/test": "no-such-node"}},
            "Failed",
            "ScheduleTimeout",
            None,
        ),
        ({"startDelaySeconds": 5}, {"startupTimeoutSeconds": 1}, "Failed", "StartupTimeout", None),
        ({"runSeconds": 5}, {"activeDeadlineSeconds": 1}, "Failed", "DeadlineExceeded", None),
    ],
    ids=[
        "skip",
        "oom",
        "oom-child",
        "invalid-image",
        "never-pull",
        "pull-error",
        "evicted",
        "node-lost",
        "transient-pull",
        "schedule",
        "startup",
        "deadline",
    ],
)
def test_outcomes(controller: Controller, runs: Runs, scenario, spec, phase, reason, exit_code):
    runs.create("run", scenario=scenario, **spec)
    status = runs.wait_finished("run", timeout=6)
    assert (status["phase"], status["reason"]) == (phase, reason), status.get("message")
    assert status.get("exitCode") == exit_code
    # whatever the outcome, the default finish action leaves no pod behind
    poll(lambda: not runs.pods(), what="the pod to go")
    assert runs.pod_creates() == 1


def test_pod_warnings_are_mirrored_and_logged_on_failure(controller: Controller, runs: Runs):
    scenario = {"image": "ErrImagePull:manifest unknown"}
    runs.create("pull", scenario=scenario, logEventsOnFailure=True)
    status = runs.wait_finished("pull")
    assert status["reason"] == "ImagePullFailed"
    assert any("manifest unknown" in w["message"] for w in status["warnings"])
    assert "pod events:" in status["message"]
    assert "Warning Failed: Error: ErrImagePull" in status["message"]


def test_transitions_are_recorded_as_events_on_the_taskrun(controller: Controller, runs: Runs):
    runs.create("evented", scenario={"exitCode": 0})
    runs.wait_finished("evented")

    def mine() -> list[dict]:
        return [
            e
            for e in runs.events()
            if e["involvedObject"]["kind"] == "TaskRun" and e["involvedObject"]["name"] == "evented"
        ]

    # The Event follows the status write: a real API server may answer the status first.
    poll(lambda: any(e["reason"] == "Succeeded" for e in mine()), what="the Succeeded Event")
    events = mine()
    reasons = [
        e["reason"] for e in sorted(events, key=lambda e: e["metadata"]["creationTimestamp"])
    ]
    assert reasons[0] in ("PodCreated", "Running", "Succeeded")
    assert all(e["source"]["component"] == "taskrun-controller" for e in events)
