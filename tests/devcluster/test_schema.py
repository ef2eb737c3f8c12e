from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.schema import (
    ABSENT,
    StructuralSchema,
    apply_defaults,
    compile_rules,
    lookup,
    prune,
    to_json_schema,
)

CRD = yaml.safe_load((Path(__file__).parent / "data" / "widgets-crd.yaml").read_text())
SCHEMA = StructuralSchema(CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"color": "red", **spec},
    }


def messages(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [e.render() for e in SCHEMA.validate(obj, old)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"size": -1},
            "spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0",
        ),
        (
            {"size": "three"},
            'spec.size: Invalid value: "string": '
            'spec.size in body must be of type integer: "string"',
        ),
        (
            {"color": "pink"},
            'spec.color: Unsupported value: "pink": supported values: "red", "green", "blue"',
        ),
        ({"note": "x" * 11}, "spec.note: Too long: may not be more than 10 bytes"),
        (
            {"port": 1.5},
            "spec.port: Invalid value: 1.5: "
            "spec.port in body must be of type integer or string: 1.5",
        ),
        ({"size": 5, "maxSize": 3}, 'spec: Invalid value: "object": size must not exceed maxSize'),
    ],
)
def test_errors_use_the_apiservers_wording(spec: dict[str, Any], expected: str) -> None:
    assert messages(widget(**spec)) == [expected]


def test_missing_required_field() -> None:
    obj = widget()
    del obj["spec"]["color"]
    assert messages(obj) == ["spec.color: Required value"]


@pytest.mark.parametrize("spec", [{"note": None}, {"port": 8080}, {"port": "http"}, {"size": 0}])
def test_valid_values(spec: dict[str, Any]) -> None:
    assert messages(widget(**spec)) == []


def test_transition_rule_only_on_update() -> None:
    new = widget()
    new["spec"]["color"] = "blue"
    assert messages(new) == []
    assert messages(new, old=widget()) == [
        'spec.color: Invalid value: "object": color is immutable'
    ]


def test_prune_drops_unknown_fields_but_keeps_preserved_ones() -> None:
    obj = widget(extra={"anything": {"goes": 1}}, bogus=1)
    obj["status"] = {"phase": "x", "unknown": 2}
    obj["topLevel"] = True
    dropped = SCHEMA.prune(obj)
    assert sorted(dropped) == ["spec.bogus", "status.unknown", "topLevel"]
    assert obj["spec"]["extra"] == {"anything": {"goes": 1}}
    assert "metadata" in obj and "apiVersion" in obj


def test_defaults_are_applied() -> None:
    obj = widget()
    SCHEMA.default(obj)
    assert obj["spec"]["size"] == 1


def test_nested_defaults_inside_arrays() -> None:
    schema = {
        "type": "array",
        "items": {"type": "object", "properties": {"a": {"type": "integer", "default": 3}}},
    }
    value = [{}, {"a": 1}]
    apply_defaults(value, schema)
    assert value == [{"a": 3}, {"a": 1}]


def test_translation_of_kubernetes_extensions() -> None:
    out = to_json_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": True, "enum": ["x"]},
                "b": {"x-kubernetes-int-or-string": True},
                "c": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        }
    )
    assert out["properties"]["a"] == {"type": ["string", "null"], "enum": ["x", None]}
    assert out["properties"]["b"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert out["properties"]["c"]["additionalProperties"] == {"type": "integer"}


def test_prune_list_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "l": {
                "type": "array",
                "items": {"type": "object", "properties": {"k": {"type": "string"}}},
            }
        },
    }
    value = {"l": [{"k": "1", "z": 2}]}
    assert prune(value, schema, root=False) == ["l[0].z"]
    assert value == {"l": [{"k": "1"}]}


def test_uncompilable_rule_is_reported() -> None:
    errors = compile_rules({"type": "object", "x-kubernetes-validations": [{"rule": "self.a >"}]})
    assert len(errors) == 1
    assert errors[0].field.endswith("x-kubernetes-validations[0].rule")


def test_ratcheting_keeps_unchanged_invalid_values() -> None:
    old = widget(size=-1)
    new = widget(size=-1)
    new["status"] = {"phase": "Running"}
    assert messages(new, old=old) == [], "an unchanged invalid value may stay"
    changed = widget(size=-2)
    assert messages(changed, old=old) == [
        "spec.size: Invalid value: -2: spec.size in body should be greater than or equal to 0"
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("spec.color", "red"), ("spec.l[1].a", 2), ("spec.l[5]", ABSENT), ("nope.x", ABSENT)],
)
def test_lookup(path: str, expected: Any) -> None:
    assert lookup(widget(l=[{"a": 1}, {"a": 2}]), path) == expected
