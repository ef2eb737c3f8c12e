"""Status models, the resource wrapper, and InvalidSpec error formatting."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import ValidationError

from taskrun.api import (
    API_VERSION,
    OnFinishAction,
    Phase,
    TaskRun,
    TaskRunStatus,
    field_path,
    format_duration,
    format_validation_error,
    validate_spec,
)
from taskrun.api.spec import OnFinishActionName
from taskrun.api.status import ConditionStatus


def test_status_round_trip_and_condition_lookup() -> None:
    wire = {
        "phase": "Failed",
        "conditions": [
            {
                "type": "Succeeded",
                "status": "False",
                "reason": "ExitCode",
                "message": "exit code 3",
                "lastTransitionTime": "2026-01-01T00:00:10Z",
            }
        ],
        "observedGeneration": 1,
        "podName": "job-1",
        "attempts": 1,
        "startTime": "2026-01-01T00:00:00Z",
        "completionTime": "2026-01-01T00:01:03Z",
        "duration": "1m3s",
        "exitCode": 3,
        "reason": "ExitCode",
        "message": "exit code 3",
        "result": '{"a": 1}',
        "resultSize": 8,
        "logs": {
            "namespace": "ns",
            "pod": "job-1",
            "container": "base",
            "tail": "x",
            "tailLines": 1,
            "truncated": False,
            "command": "kubectl logs -n ns job-1",
        },
        "warnings": [
            {
                "reason": "BackOff",
                "message": "m",
                "count": 2,
                "lastTimestamp": "2026-01-01T00:00:05Z",
            }
        ],
        "history": [{"attempt": 1, "podName": "job-1", "phase": "Failed", "exitCode": 3}],
    }
    status = TaskRunStatus.model_validate(wire)
    assert status.phase is Phase.FAILED
    assert status.to_dict() == wire
    condition = status.condition()
    assert condition is not None and condition.reason == "ExitCode"
    assert status.condition("Ready") is None


def test_status_ignores_fields_written_by_others() -> None:
    status = TaskRunStatus.model_validate({"phase": "Running", "kopf": {"progress": {}}})
    assert status.to_dict() == {"phase": "Running"}


@pytest.mark.parametrize(
    "wire",
    [
        {"phase": "Done"},
        {"conditions": [{"status": "Maybe"}]},
        {"attempts": -1},
        {"history": [{"attempt": 0}]},
    ],
)
def test_status_refuses_invalid_values(wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TaskRunStatus.model_validate(wire)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (60, "1m0s"),
        (63, "1m3s"),
        (3605, "1h0m5s"),
        (90061, "25h1m1s"),
        (-3, "0s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_finish_action_field_is_the_enum() -> None:
    # One type: the spec field takes the enum's values (as plain strings on the wire).
    assert typing.get_args(OnFinishActionName)[0] is OnFinishAction
    for action in OnFinishAction:
        assert (
            validate_spec({"image": "i", "onFinishAction": action.value}).on_finish_action is action
        )
    assert set(typing.get_args(ConditionStatus)) == {"True", "False", "Unknown"}


def test_taskrun_as_read_from_the_api() -> None:
    obj = {
        "apiVersion": API_VERSION,
        "kind": "TaskRun",
        "metadata": {
            "name": "hello",
            "namespace": "ns",
            "uid": "u-1",
            "generation": 2,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"kopf.zalando.org/last-handled-configuration": "{}"},
        },
        "spec": {"image": "busybox"},
        "status": {"phase": "Pending"},
    }
    run = TaskRun.model_validate(obj)
    assert run.metadata.name == "hello"
    assert run.spec.startup_timeout_seconds == 120
    assert run.status is not None and run.status.phase is Phase.PENDING
    with pytest.raises(ValidationError):
        TaskRun.model_validate({**obj, "apiVersion": "taskrun.dev/v1"})
    with pytest.raises(ValidationError):
        TaskRun.model_validate({**obj, "spec": {"image": "busybox", "retries": "1"}})


@pytest.mark.parametrize(
    ("loc", "prefix", "path"),
    [
        (("image",), "spec", "spec.image"),
        (("envVars", 0, "name"), "spec", "spec.envVars[0].name"),
        (("labels", "a b", "[key]"), "spec", "spec.labels.a b (key)"),
        ((), "spec", "spec"),
        (("phase",), "", "phase"),
        ((), "", "."),
    ],
)
def test_field_path(loc: tuple[Any, ...], prefix: str, path: str) -> None:
    assert field_path(loc, prefix) == path


def test_format_validation_error_names_field_limit_and_actual() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_spec(
            {"image": "x", "retries": 500, "ports": [{"containerPort": 80, "protocol": "HTTP"}]}
        )
    assert format_validation_error(caught.value).splitlines() == [
        "spec.ports[0].protocol: Input should be 'TCP', 'UDP' or 'SCTP' (got 'HTTP')",
        "spec.retries: Input should be less than or equal to 100 (got 500)",
    ]
    long = "x" * 500
    with pytest.raises(ValidationError) as caught:
        validate_spec({"image": "x", "onFinishAction": long})
    line = format_validation_error(caught.value)
    assert line.endswith("...)") and len(line) < 200
