"""The scenario annotation parser: defaults, per-container overrides, clear errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devcluster.scenario import (
    DEFAULT_RUN_SECONDS,
    SCENARIO_ANNOTATION,
    ContainerScenario,
    ScenarioError,
    parse_scenario,
    pod_scenario,
)


def test_missing_or_blank_annotation_is_the_default_scenario() -> None:
    for text in (None, "", "   "):
        scenario = parse_scenario(text)
        base = scenario.for_container("base", is_base=True)
        assert base == ContainerScenario()
        assert base.exit_code is None
        assert base.run_seconds == DEFAULT_RUN_SECONDS
        assert base.logs is None
        assert scenario.unschedulable is None


@pytest.mark.parametrize(
    ("raw", "container", "is_base", "expected"),
    [
        ({"exitCode": 3}, "base", True, {"exit_code": 3}),
        ({"exitCode": 3}, "other", False, {"exit_code": None}),
        ({"runSeconds": 1, "logs": "x"}, "base", True, {"run_seconds": 1.0, "logs": "x"}),
        (
            {"exitCode": 1, "containers": {"base": {"exitCode": 2}}},
            "base",
            True,
            {"exit_code": 2},
        ),
        (
            {"logs": "top", "containers": {"base": {"exitCode": 2}}},
            "base",
            True,
            {"exit_code": 2, "logs": "top"},
        ),
        (
            {"logs": "top", "containers": {"side": {"ignoreSigterm": True}}},
            "side",
            False,
            {"logs": None, "ignore_sigterm": True},
        ),
        ({"image": "ErrImagePull:denied"}, "base", True, {"image": "ErrImagePull:denied"}),
        ({"oomKilled": True, "startDelaySeconds": 0.5}, "base", True, {"oom_killed": True}),
        ({"terminationMessage": "bye"}, "base", True, {"termination_message": "bye"}),
    ],
)
def test_container_view(
    raw: dict[str, Any], container: str, is_base: bool, expected: dict[str, Any]
) -> None:
    view = parse_scenario(json.dumps(raw)).for_container(container, is_base=is_base)
    for attribute, value in expected.items():
        assert getattr(view, attribute) == value


def test_pod_level_keys() -> None:
    scenario = parse_scenario(
        json.dumps(
            {"unschedulable": "no room", "evictAfterSeconds": 1, "nodeLostAfterSeconds": 2.5}
        )
    )
    assert scenario.unschedulable == "no room"
    assert scenario.evict_after_seconds == 1.0
    assert scenario.node_lost_after_seconds == 2.5


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"a": 1}', b'{"a": 1}'),
        ("h\u00e9\n", "h\u00e9\n".encode()),
        ({"text": "ab", "repeat": 3}, b"ababab"),
        ({"text": "ab"}, b"ab"),
        ({"text": "ab", "repeat": 0}, b""),
        ({"base64": base64.b64encode(b"\x00\xff").decode()}, b"\x00\xff"),
        ({"parts": ['"', {"text": "x", "repeat": 3}, '"']}, b'"xxx"'),
        ({"parts": [{"parts": ["a", {"base64": "Yg=="}]}, "c"]}, b"abc"),
        ({"parts": []}, b""),
    ],
)
def test_file_contents(content: Any, expected: bytes) -> None:
    scenario = parse_scenario(json.dumps({"files": {"/airflow/xcom/return.json": content}}))
    files = scenario.for_container("base", is_base=True).files
    assert files == {"/airflow/xcom/return.json": expected}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("{", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"exitCode": "1"}', "exitCode must be an integer"),
        ('{"exitCode": 256}', "exitCode must be an integer in [0, 255]"),
        ('{"exitCode": true}', "exitCode must be an integer"),
        ('{"runSeconds": -1}', "runSeconds must be a finite number >= 0"),
        ('{"runSeconds": "fast"}', "runSeconds must be a number"),
        ('{"oomKilled": 1}', "oomKilled must be true or false"),
        ('{"logs": 5}', "logs must be a string"),
        ('{"image": "Nope"}', "image must be one of"),
        ('{"exitcode": 1}', "unknown key exitcode"),
        ('{"files": []}', "files must be an object"),
        ('{"files": {"rel/path": "x"}}', "paths must be absolute"),
        ('{"files": {"/a": {"base64": "!!"}}}', "files['/a'].base64 is not valid base64"),
        ('{"files": {"/a": {"repeat": 2}}}', "files['/a'] must be a string"),
        ('{"files": {"/a": 3}}', "files['/a'] must be a string"),
        ('{"files": {"/a": {"parts": [1]}}}', "files['/a'].parts[0] must be a string"),
        ('{"files": {"/a": {"parts": "ab"}}}', "files['/a'] must be a string"),
        ('{"containers": []}', "containers must be an object"),
        ('{"containers": {"x": 1}}', "containers must be an object"),
        ('{"containers": {"x": {"exitCode": -1}}}', "containers.x.exitCode must be an integer"),
        ('{"containers": {"x": {"unschedulable": "a"}}}', "unknown key containers.x.unsched"),
        ('{"unschedulable": 1}', "unschedulable must be a string"),
        ('{"evictAfterSeconds": "soon"}', "evictAfterSeconds must be a number"),
        ('{"nodeLostAfterSeconds": NaN}', "nodeLostAfterSeconds must be a finite number"),
    ],
)
def test_errors_name_the_key(text: str, names: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text)
    assert names in str(info.value)


def test_pod_scenario_reads_the_annotation() -> None:
    pod = {"metadata": {"annotations": {SCENARIO_ANNOTATION: '{"exitCode": 7}'}}}
    assert pod_scenario(pod).for_container("base", is_base=True).exit_code == 7
    assert pod_scenario({"metadata": {}}).base == ContainerScenario()


def test_image_pull_error_message() -> None:
    assert ContainerScenario(image="ErrImagePull:rate: x").image_pull_error == "rate: x"
    assert ContainerScenario().image_pull_error is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(
    ["exitCode", "runSeconds", "logs", "files", "image", "oomKilled", "containers",
     "unschedulable", "evictAfterSeconds", "terminationMessage", "ignoreSigterm"]
)  # fmt: skip


@settings(deadline=None)
@given(st.dictionaries(_keys, _json, max_size=4))
def test_any_json_parses_or_fails_with_a_scenario_error(raw: dict[str, Any]) -> None:
    # A bad scenario must fail the pod with a message, never crash the kubelet.
    try:
        scenario = parse_scenario(json.dumps(raw))
    except ScenarioError as exc:
        assert str(exc)
        return
    for name in scenario.containers:
        scenario.for_container(name, is_base=False)
    scenario.for_container("base", is_base=True)


@settings(deadline=None)
@given(st.integers(0, 255), st.text(), st.floats(0, 10))
def test_valid_values_round_trip(code: int, logs: str, seconds: float) -> None:
    raw = {"exitCode": code, "logs": logs, "runSeconds": seconds}
    view = parse_scenario(json.dumps(raw)).for_container("base", is_base=True)
    assert (view.exit_code, view.logs, view.run_seconds) == (code, logs, seconds)
