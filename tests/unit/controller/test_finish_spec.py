"""FinishSpec: the typed part of the spec a finished run's disposal reads, field by field."""

from __future__ import annotations

from typing import Any

import pytest

from controller.core.disposal import FINISHED_SPEC_FIELDS, FinishSpec
from taskrun.api import OnFinishAction, TaskRunSpec, validate_spec


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, FinishSpec()),
        ({"onFinishAction": "keep_pod"}, FinishSpec(on_finish_action=OnFinishAction.KEEP_POD)),
        ({"onFinishAction": "nonsense"}, FinishSpec()),
        ({"onFinishAction": None}, FinishSpec()),
        ({"ttlSecondsAfterFinished": 30}, FinishSpec(ttl_seconds_after_finished=30)),
        # as before the types: a bool is no int, a negative ttl still counts
        ({"ttlSecondsAfterFinished": True}, FinishSpec()),
        ({"ttlSecondsAfterFinished": -1}, FinishSpec(ttl_seconds_after_finished=-1)),
        ({"terminationGracePeriod": "5"}, FinishSpec()),
        (
            {"doXcomPush": True, "baseContainerName": "main"},
            FinishSpec(do_xcom_push=True, base_container_name="main"),
        ),
        # a spec that ended InvalidSpec elsewhere still gives what can be read
        (
            {"image": 7, "onFinishAction": "delete_succeeded_pod"},
            FinishSpec(OnFinishAction.DELETE_SUCCEEDED_POD),
        ),
    ],
)
def test_read(raw: dict[str, Any], expected: FinishSpec) -> None:
    assert FinishSpec.read(raw) == expected


def test_a_valid_spec_reads_as_the_model_does() -> None:
    raw = {
        "image": "busybox",
        "onFinishAction": "keep_pod",
        "ttlSecondsAfterFinished": 60,
        "terminationGracePeriod": 3,
        "doXcomPush": True,
        "baseContainerName": "main",
    }
    spec = validate_spec(raw)
    read = FinishSpec.read(raw)
    for name in FinishSpec.__dataclass_fields__:
        assert getattr(read, name) == getattr(spec, name), name


def test_wire_names_are_the_models() -> None:
    aliases = {f.alias for f in TaskRunSpec.model_fields.values()}
    assert set(FINISHED_SPEC_FIELDS) <= aliases
    assert len(FINISHED_SPEC_FIELDS) == len(FinishSpec.__dataclass_fields__)
