"""Hypothesis: specs the models accept round-trip through the models and pass the CRD schema.

Candidate specs are drawn from the models' own JSON schema (every Kubernetes sub-object
included), kept when the models accept them, then checked against the CRD's
openAPIV3Schema (as JSON Schema) and its CEL rules: anything the controller accepts, the
API server must accept too.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from crdcheck import as_json_schema, cel_failures
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from taskrun.api import TaskRun, TaskRunSpec, TaskRunStatus, format_validation_error, validate_spec
from taskrun.api.crd import _inline, build_crd

ROOT = Path(__file__).resolve().parents[3]

# Below this depth only required fields are drawn: the Kubernetes closure is deep.
MAX_DEPTH = 5


@functools.cache
def crd_spec_schema() -> dict[str, Any]:
    root = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema: dict[str, Any] = root["properties"]["spec"]
    return schema


@functools.cache
def crd_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(as_json_schema(crd_spec_schema()))


@functools.cache
def model_schema() -> dict[str, Any]:
    raw = TaskRunSpec.model_json_schema(by_alias=True)
    inlined: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return inlined


def _regex(pattern: str, max_size: int | None) -> st.SearchStrategy[str]:
    strategy = st.from_regex(pattern, fullmatch=True)
    if max_size is not None:
        strategy = strategy.filter(lambda s: len(s) <= max_size)
    return strategy


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    if node.get("x-kubernetes-int-or-string"):
        strings = _regex(node["pattern"], 20) if "pattern" in node else st.text(max_size=8)
        return st.one_of(st.integers(min_value=0, max_value=2**31), strings)
    if "anyOf" in node:
        alternatives = [a for a in node["anyOf"] if a.get("type") != "null"]
        return st.one_of(*(from_schema(a, depth) for a in alternatives))
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    kind = node.get("type")
    if kind == "string":
        if node.get("format") == "date-time":
            return st.just("2026-01-02T03:04:05Z")
        if "pattern" in node:
            return _regex(node["pattern"], node.get("maxLength"))
        return st.text(
            min_size=node.get("minLength", 0), max_size=min(node.get("maxLength", 12), 12)
        )
    if kind == "integer":
        return st.integers(min_value=node.get("minimum"), max_value=node.get("maximum"))
    if kind == "number":
        return st.floats(
            min_value=node.get("minimum"),
            max_value=node.get("maximum"),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        size = 2 if depth < MAX_DEPTH else 0
        return st.lists(from_schema(node["items"], depth + 1), max_size=size)
    if kind == "object":
        return _object(node, depth)
    raise AssertionError(f"no strategy for {node}")


def _object(node: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    if "patternProperties" in node:
        ((pattern, values),) = node["patternProperties"].items()
        return st.dictionaries(_regex(pattern, 63), from_schema(values, depth + 1), max_size=2)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return st.dictionaries(
            st.text(min_size=1, max_size=8), from_schema(extra, depth + 1), max_size=2
        )
    properties = node.get("properties", {})
    required = set(node.get("required", []))
    group, low, high = _one_of_group(node)
    optional = {}
    if depth < MAX_DEPTH:
        optional = {
            name: from_schema(sub, depth + 1)
            for name, sub in properties.items()
            if name not in required and name not in group
        }
    base = st.fixed_dictionaries(
        {name: from_schema(properties[name], depth + 1) for name in sorted(required)},
        optional=optional,
    )
    if not group:
        return base
    # Draw as many of a one-of group as its rule allows, so most candidates are valid.
    chosen = st.integers(low, high).flatmap(
        lambda n: st.permutations(group).map(lambda names: sorted(names[:n]))
    )
    picked = chosen.flatmap(
        lambda names: st.fixed_dictionaries(
            {name: from_schema(properties[name], depth + 1) for name in names}
        )
    )
    return st.tuples(base, picked).map(lambda parts: {**parts[0], **parts[1]})


def _one_of_group(node: dict[str, Any]) -> tuple[list[str], int, int]:
    """The fields, minimum and maximum of a one-of CEL rule on this object, if any."""
    for rule in node.get("x-kubernetes-validations", []):
        text = rule["rule"]
        fields = re.findall(r"\(has\(self\.(\w+)\)", text)
        bounds = re.search(r"(==|<=) (\d+)$", text)
        if fields and bounds and "? 1 : 0" in text:
            high = int(bounds.group(2))
            return fields, high if bounds.group(1) == "==" else 0, high
    return [], 0, 0


specs = st.deferred(lambda: from_schema(model_schema()))

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@HYPOTHESIS
@given(specs)
def test_valid_specs_round_trip_and_pass_the_crd(candidate: dict[str, Any]) -> None:
    try:
        spec = validate_spec(candidate)
    except ValidationError:
        assume(False)
        raise
    wire = spec.to_dict()
    again = validate_spec(wire)
    assert again == spec
    assert again.to_dict() == wire
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in crd_validator().iter_errors(wire)]
    assert errors == []
    assert cel_failures(crd_spec_schema(), wire) == []
    # An unchanged spec passes the update (transition) rules as well.
    assert cel_failures(crd_spec_schema(), wire, wire) == []


@HYPOTHESIS
@given(specs, st.booleans())
def test_only_cancel_may_change(candidate: dict[str, Any], cancel: bool) -> None:
    try:
        wire = validate_spec(candidate).to_dict()
    except ValidationError:
        assume(False)
        raise
    old = {**wire, "cancel": False}
    new = {**wire, "cancel": cancel}
    assert cel_failures(crd_spec_schema(), new, old) == []
    changed = {**new, "retries": (wire["retries"] + 1) % 100}
    assert cel_failures(crd_spec_schema(), changed, old) == [
        ".retries: is immutable after creation (only spec.cancel may change)"
    ]


# Wrong types and unknown enum values: refused by the CRD at apply time and by the models,
# both naming the same field.
REFUSED_BY_BOTH = [
    ({"retries": "3"}, ["retries"]),
    ({"retries": 101}, ["retries"]),
    ({"startupTimeoutSeconds": 0}, ["startupTimeoutSeconds"]),
    ({"onFinishAction": "delete"}, ["onFinishAction"]),
    ({"imagePullPolicy": "always"}, ["imagePullPolicy"]),
    ({"skipOnExitCode": [256]}, ["skipOnExitCode", 0]),
    ({"envVars": [{"value": "x"}]}, ["envVars", 0]),
    ({"envVars": {"A": "1"}}, ["envVars"]),
    ({"ports": [{"containerPort": "80"}]}, ["ports", 0, "containerPort"]),
    ({"tolerations": [{"operator": "Equals"}]}, ["tolerations", 0, "operator"]),
    ({"containerResources": {"limits": {"cpu": "one"}}}, ["containerResources", "limits", "cpu"]),
    ({"containerResources": {"limits": {"cpu": 0.5}}}, ["containerResources", "limits", "cpu"]),
    ({"volumes": [{"name": "v", "hostPath": {"path": "/", "type": "Dir"}}]}, ["volumes", 0]),
    ({"labels": {"a": "not valid!"}}, ["labels", "a"]),
    ({"hostNetwork": "true"}, ["hostNetwork"]),
    ({"imagee": "typo"}, []),
]


@pytest.mark.parametrize(("extra", "path"), REFUSED_BY_BOTH)
def test_refused_by_crd_and_models(extra: dict[str, Any], path: list[Any]) -> None:
    spec = {"image": "busybox", **extra}
    crd_errors = list(crd_validator().iter_errors(spec))
    assert crd_errors, f"the CRD accepts {extra}"
    assert any(list(e.absolute_path)[: len(path)] == path for e in crd_errors)
    with pytest.raises(ValidationError) as caught:
        validate_spec(spec)
    field = next(iter(extra))
    assert format_validation_error(caught.value).startswith(f"spec.{field}")


@functools.cache
def crd_status_validator() -> jsonschema.Draft7Validator:
    root = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(as_json_schema(root["properties"]["status"]))


@functools.cache
def status_model_schema() -> dict[str, Any]:
    raw = TaskRunStatus.model_json_schema(by_alias=True)
    inlined: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return inlined


@HYPOTHESIS
@given(st.deferred(lambda: from_schema(status_model_schema())))
def test_status_the_controller_writes_passes_the_crd(candidate: dict[str, Any]) -> None:
    try:
        status = TaskRunStatus.model_validate(candidate)
    except ValidationError:
        assume(False)
        raise
    wire = status.to_dict()
    assert TaskRunStatus.model_validate(wire) == status
    assert [e.message for e in crd_status_validator().iter_errors(wire)] == []


def test_status_schema_refuses_an_unknown_phase() -> None:
    assert list(crd_status_validator().iter_errors({"phase": "Done"}))
    assert list(crd_status_validator().iter_errors({"conditions": [{"status": "Maybe"}]}))


def example_taskruns() -> list[Any]:
    found = []
    for path in sorted((ROOT / "examples").glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "TaskRun":
                found.append(pytest.param(doc, id=f"{path.name}:{doc['metadata']['name']}"))
    return found


@pytest.mark.parametrize("taskrun", example_taskruns())
def test_examples_are_valid_taskruns(taskrun: dict[str, Any]) -> None:
    run = TaskRun.model_validate(taskrun)
    assert [e.message for e in crd_validator().iter_errors(taskrun["spec"])] == []
    assert cel_failures(crd_spec_schema(), run.spec.to_dict()) == []


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _paths(sub, (*path, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found += _paths(sub, (*path, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@HYPOTHESIS
@given(specs, st.data())
def test_a_wrong_type_anywhere_is_refused_by_both_at_that_field(
    candidate: dict[str, Any], data: st.DataObject
) -> None:
    try:
        wire = validate_spec(candidate).to_dict()
    except ValidationError:
        assume(False)
        raise
    path = data.draw(st.sampled_from(_paths(wire)))
    original = _get(wire, path)
    # A value of a type no field has where this one is: an object for scalars, a number
    # for lists and objects.
    wrong = {"wrong": True} if not isinstance(original, (dict, list)) else 7
    broken = _replace(wire, path, wrong)
    with pytest.raises(ValidationError) as caught:
        validate_spec(broken)
    locs = [tuple(e["loc"])[: len(path)] for e in caught.value.errors()]
    assert path in locs, format_validation_error(caught.value)
    if path[0] != "podTemplate":
        crd_paths = [
            tuple(e.absolute_path)[: len(path)] for e in crd_validator().iter_errors(broken)
        ]
        assert path in crd_paths


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value
