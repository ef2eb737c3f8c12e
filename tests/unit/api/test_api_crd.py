"""The generated CRD: committed, valid for Kubernetes 1.37, structural, small, and its rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from crdcheck import CEL, cel_failures
from pydantic import ValidationError

from taskrun.api import (
    API_VERSION,
    CRD_NAME,
    KIND,
    PLURAL,
    SHORT_NAMES,
    format_validation_error,
    validate_spec,
)
from taskrun.api.crd import LOOSE_FIELDS, build_crd, render_yaml

ROOT = Path(__file__).resolve().parents[3]
BUDGET = 200 * 1024


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return build_crd()


def openapi(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_is_the_generated_one() -> None:
    committed = (ROOT / "crds" / "taskrun.yaml").read_text()
    assert committed == render_yaml(), "stale: run python -m taskrun.api.crd > crds/taskrun.yaml"


def test_crd_is_valid_for_kubernetes_1_37_strict() -> None:
    data = yaml.safe_load(render_yaml())
    kubernetes_validate.validate(data, desired_version="1.37.0", strict=True)


def test_kubernetes_validate_catches_a_broken_crd(crd: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(crd))
    broken["spec"]["scope"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, desired_version="1.37.0", strict=True)


def test_size_stays_within_budget(crd: dict[str, Any]) -> None:
    last_applied = json.dumps(crd, separators=(",", ":")).encode()
    assert len(last_applied) < BUDGET
    assert len(render_yaml().encode()) < BUDGET


def test_names_and_subresources(crd: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == CRD_NAME == "taskruns.taskrun.dev"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (KIND, PLURAL, SHORT_NAMES)
    assert "tr" not in names["shortNames"]
    assert "categories" not in names
    version = crd["spec"]["versions"][0]
    assert f"{crd['spec']['group']}/{version['name']}" == API_VERSION
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("Phase", ".status.phase"),
        ("Reason", ".status.reason"),
        ("Exit", ".status.exitCode"),
        ("Pod", ".status.podName"),
        ("Age", ".metadata.creationTimestamp"),
        ("Duration", ".status.duration"),
    ]
    status = openapi(crd)["properties"]["status"]["properties"]
    for _, path in columns:
        if path.startswith(".status."):
            assert path.removeprefix(".status.") in status


FORBIDDEN_KEYS = {
    "$ref",
    "$defs",
    "definitions",
    "patternProperties",
    "propertyNames",
    "dependencies",
    "additionalItems",
    "const",
    "title",
    "exclusiveMinimum",
    "exclusiveMaximum",
}


def structural_problems(node: dict[str, Any], path: str) -> list[str]:
    problems = [f"{path}: {key}" for key in FORBIDDEN_KEYS & set(node)]
    int_or_string = node.get("x-kubernetes-int-or-string")
    if int_or_string:
        if node.get("anyOf") != [{"type": "integer"}, {"type": "string"}] or "type" in node:
            problems.append(f"{path}: malformed int-or-string")
    elif "type" not in node:
        problems.append(f"{path}: no type")
    elif "anyOf" in node or "oneOf" in node:
        problems.append(f"{path}: union")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties")
    if node.get("type") == "object" and not (
        "properties" in node
        or "additionalProperties" in node
        or node.get("x-kubernetes-preserve-unknown-fields")
    ):
        problems.append(f"{path}: object without fields")
    for name, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        problems += structural_problems(node["items"], f"{path}[*]")
    return problems


def test_schema_is_structural(crd: dict[str, Any]) -> None:
    root = openapi(crd)
    # The API server owns metadata's schema; CRDs declare it as a bare object.
    assert root["properties"]["metadata"] == {"type": "object"}
    problems = structural_problems(root, "")
    assert problems == [".metadata: object without fields"]


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({"properties": {"a": {"type": "string"}}}, ": no type"),
        ({"type": "object", "properties": {"a": {"$ref": "#/x", "type": "string"}}}, ".a: $ref"),
        ({"type": "object"}, ": object without fields"),
        ({"anyOf": [{"type": "integer"}], "x-kubernetes-int-or-string": True}, "int-or-string"),
    ],
)
def test_structural_check_catches_problems(node: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in structural_problems(node, ""))


def test_deep_and_loose_fields(crd: dict[str, Any]) -> None:
    spec = openapi(crd)["properties"]["spec"]
    assert spec["required"] == ["image"]
    for name in LOOSE_FIELDS:
        assert spec["properties"][name]["x-kubernetes-preserve-unknown-fields"] is True
    env = spec["properties"]["envVars"]["items"]
    assert env["required"] == ["name"]
    assert "valueFrom" in env["properties"]
    limits = spec["properties"]["containerResources"]["properties"]["limits"]
    assert limits["additionalProperties"]["x-kubernetes-int-or-string"] is True
    assert spec["properties"]["imagePullPolicy"]["enum"] == ["Always", "IfNotPresent", "Never"]
    port = spec["properties"]["ports"]["items"]["properties"]["containerPort"]
    assert (port["type"], port["minimum"], port["maximum"]) == ("integer", -(2**31), 2**31 - 1)
    for name in ("volumes", "initContainers"):
        assert spec["properties"][name]["x-kubernetes-list-type"] == "map"
        assert spec["properties"][name]["x-kubernetes-list-map-keys"] == ["name"]


# --- CEL rules, evaluated with cel-python the way the API server applies them -----------


@pytest.fixture(scope="module")
def spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = openapi(crd)["properties"]["spec"]
    return schema


def test_every_rule_compiles(spec_schema: dict[str, Any]) -> None:
    rules: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            rules.extend(r["rule"] for r in node.get("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)

    walk(spec_schema)
    assert len(rules) > len(spec_schema["properties"])
    for rule in rules:
        CEL.compile(rule)


BASE = {"image": "busybox", "retries": 1, "envVars": [{"name": "A", "value": "1"}]}

CREATE_CASES = [
    (BASE, []),
    ({**BASE, "initContainers": [{"name": "init", "image": "x"}]}, []),
    (
        {**BASE, "initContainers": [{"name": "base", "image": "x"}]},
        [": initContainers names must differ from baseContainerName and from airflow-xcom-sidecar"],
    ),
    (
        {**BASE, "baseContainerName": "main", "initContainers": [{"name": "main", "image": "x"}]},
        [": initContainers names must differ from baseContainerName and from airflow-xcom-sidecar"],
    ),
    ({**BASE, "baseContainerName": "main", "initContainers": [{"name": "base", "image": "x"}]}, []),
    (
        {**BASE, "initContainers": [{"name": "airflow-xcom-sidecar", "image": "x"}]},
        [": initContainers names must differ from baseContainerName and from airflow-xcom-sidecar"],
    ),
    (
        {**BASE, "secrets": [{"deployType": "volume", "secret": "s"}]},
        [".secrets[0]: deployTarget (the mount path) is required when deployType is volume"],
    ),
    ({**BASE, "secrets": [{"deployType": "env", "secret": "s"}]}, []),
    (
        {**BASE, "secrets": [{"deployType": "env", "secret": "s", "key": "k"}]},
        [".secrets[0]: deployTarget (the variable name) is required for env with a key"],
    ),
    (
        {**BASE, "secrets": [{"deployType": "env", "secret": "s", "items": [{"key": "k"}]}]},
        [".secrets[0]: items apply to deployType volume only"],
    ),
    (
        {**BASE, "retryBackoff": {"maxSeconds": 5}},
        [".retryBackoff: maxSeconds must be >= initialSeconds"],
    ),
    ({**BASE, "retryBackoff": {"maxSeconds": 10}}, []),
]


@pytest.mark.parametrize(("spec", "failures"), CREATE_CASES)
def test_rules_on_create(
    spec_schema: dict[str, Any], spec: dict[str, Any], failures: list[str]
) -> None:
    assert cel_failures(spec_schema, spec) == failures


IMMUTABLE = "is immutable after creation (only spec.cancel may change)"
ADDED = ": spec fields cannot be added or removed after creation (only spec.cancel may change)"

UPDATE_CASES = [
    (BASE, BASE, []),
    (BASE, {**BASE, "cancel": True}, []),
    ({**BASE, "cancel": False}, {**BASE, "cancel": True}, []),
    ({**BASE, "cancel": True}, {**BASE, "cancel": True}, []),
    (
        {**BASE, "cancel": True},
        {**BASE, "cancel": False},
        [".cancel: cannot go back from true to false"],
    ),
    ({**BASE, "cancel": True}, BASE, [": spec.cancel cannot be removed once true"]),
    (BASE, {**BASE, "image": "alpine"}, [f".image: {IMMUTABLE}"]),
    (BASE, {**BASE, "retries": 2}, [f".retries: {IMMUTABLE}"]),
    (BASE, {**BASE, "envVars": [{"name": "A", "value": "2"}]}, [f".envVars: {IMMUTABLE}"]),
    (BASE, {**BASE, "doXcomPush": True}, [ADDED]),
    ({**BASE, "doXcomPush": False}, BASE, [ADDED]),
    (
        {**BASE, "podTemplate": {"spec": {"hostNetwork": True}}},
        {**BASE, "podTemplate": {"spec": {"hostNetwork": False}}},
        [f".podTemplate: {IMMUTABLE}"],
    ),
]


@pytest.mark.parametrize(("old", "new", "failures"), UPDATE_CASES)
def test_rules_on_update(
    spec_schema: dict[str, Any], old: dict[str, Any], new: dict[str, Any], failures: list[str]
) -> None:
    assert cel_failures(spec_schema, new, old) == failures


ONE_OF_CASES = [
    (
        {"envVars": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]},
        "envVars[0]",
        "value (non-empty) and valueFrom exclude each other",
    ),
    (
        {"envVars": [{"name": "A", "value": "", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]},
        "",
        "",
    ),
    ({"envVars": [{"name": "A", "valueFrom": {}}]}, "envVars[0].valueFrom", "exactly one of"),
    (
        {"volumes": [{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}]},
        "volumes[0]",
        "at most one volume source may be set (none means emptyDir)",
    ),
    ({"volumes": [{"name": "v"}]}, "", ""),
    ({"envFrom": [{"prefix": "X_"}]}, "envFrom[0]", "exactly one of configMapRef, secretRef"),
    (
        {"initContainers": [{"name": "i", "livenessProbe": {"periodSeconds": 5}}]},
        "initContainers[0].livenessProbe",
        "exactly one of exec, grpc, httpGet, tcpSocket must be set",
    ),
    (
        {
            "initContainers": [
                {"name": "i", "lifecycle": {"preStop": {"sleep": {"seconds": 1}, "exec": {}}}}
            ]
        },
        "initContainers[0].lifecycle.preStop",
        "exactly one of exec, httpGet, sleep, tcpSocket must be set",
    ),
]


@pytest.mark.parametrize(("extra", "path", "message"), ONE_OF_CASES)
def test_one_of_rules_agree_between_crd_and_models(
    spec_schema: dict[str, Any], extra: dict[str, Any], path: str, message: str
) -> None:
    spec = {"image": "busybox", **extra}
    failures = cel_failures(spec_schema, spec)
    if not message:
        assert failures == []
        validate_spec(spec)
        return
    assert len(failures) == 1
    assert failures[0].startswith(f".{path}: {message}")
    with pytest.raises(ValidationError) as caught:
        validate_spec(spec)
    assert f"spec.{path}: {message}" in format_validation_error(caught.value)


def test_every_list_above_a_cel_rule_is_bounded() -> None:
    """kube-apiserver estimates a rule under an unbounded list as if the list filled a
    whole request, and refused the CRD as over its CEL cost budget (found on the real
    control plane; devcluster does not estimate costs)."""
    from taskrun.api.crd import _has_rules, build_crd

    unbounded = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            rules_below = node.get("type") == "array" and _has_rules(node.get("items"))
            if rules_below and "maxItems" not in node:
                unbounded.append(path)
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")

    walk(build_crd(), "")
    assert unbounded == []


def test_no_bound_a_float64_cannot_hold() -> None:
    """kube-apiserver reads minimum/maximum as float64; int64's limits round past
    themselves and every value of the field is then refused (found on the real control
    plane with terminationGracePeriod)."""
    from taskrun.api.crd import build_crd

    bounds: list[tuple[str, int]] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                if key in ("minimum", "maximum") and abs(sub) > 2**53:
                    bounds.append((path, sub))
                walk(sub, f"{path}.{key}")

    walk(build_crd(), "")
    assert bounds == []
