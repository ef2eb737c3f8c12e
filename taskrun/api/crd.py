"""The TaskRun CustomResourceDefinition, generated from the models.

`python -m taskrun.api.crd` prints it as YAML; crds/taskrun.yaml is that output.

The schema is structural (no $ref, every level typed). Fields users type most get
their full Kubernetes schema; the largest ones (LOOSE_FIELDS) are objects with
x-kubernetes-preserve-unknown-fields, validated by the models in the controller
(InvalidSpec naming the field), so the CRD stays far below kubectl apply's 256 KiB
last-applied annotation.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from taskrun.api.reasons import (
    CONDITION_READY,
    CONDITION_RECONCILING,
    CONDITION_SUCCEEDED,
    Reason,
)
from taskrun.api.resource import CRD_NAME, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from taskrun.api.spec import DEFAULT_BASE_CONTAINER_NAME, XCOM_SIDECAR_NAME, TaskRunSpec
from taskrun.api.status import TaskRunStatus

# Spec fields whose Kubernetes schema is too large for the budget: kept as objects that
# preserve unknown fields (plus `name` where the field is a list keyed by name). A full
# PodTemplateSpec would more than double the CRD; every other field is deep (measured
# sizes in docs/api-reference.md).
LOOSE_FIELDS = ("podTemplate",)

# Lists whose items are unique by name: the API server enforces it (list-type map).
NAMED_LISTS = ("volumes", "initContainers")

# Descriptions below this depth are dropped: the models and docs/api-reference.md keep them.
DESCRIPTION_DEPTH = 2

# propertyNames (label keys) has no CRD equivalent: the models check those keys.
_DROP_KEYS = {
    "title",
    "default",
    "additionalProperties",
    "discriminator",
    "kpo",
    "airflow",
    "propertyNames",
}

_IMMUTABLE_MESSAGE = "is immutable after creation (only spec.cancel may change)"


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return {**target, **_inline(extra, defs)}
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def _structural(node: dict[str, Any], depth: int) -> dict[str, Any]:
    """JSON Schema from pydantic -> a structural OpenAPI v3 schema."""
    any_of = node.get("anyOf")
    if any_of and not node.get("x-kubernetes-int-or-string"):
        # `X | None`: null is pruned by the API server, so only X needs a schema.
        alternatives = [alt for alt in any_of if alt.get("type") != "null"]
        if len(alternatives) != 1:
            raise ValueError(f"union without a structural form: {any_of}")
        merged = {**{k: v for k, v in node.items() if k != "anyOf"}, **alternatives[0]}
        if "description" in node:
            merged["description"] = node["description"]
        return _structural(merged, depth)
    if "patternProperties" in node:
        # Constrained dict keys (label keys): CRDs have no patternProperties; the models
        # check the keys, the schema checks the values.
        (values,) = node["patternProperties"].values()
        node = {k: v for k, v in node.items() if k != "patternProperties"}
        node["additionalProperties"] = values
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "description":
            if depth <= DESCRIPTION_DEPTH:
                out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _structural(sub, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, depth + 1)
        elif key == "x-kubernetes-validations":
            # pydantic sorts keys; a rule reads better before its message.
            order = ("rule", "message", "fieldPath", "reason", "messageExpression")
            out[key] = [{k: rule[k] for k in order if k in rule} for rule in value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            raise ValueError("use ge/le: OpenAPI v3.0 exclusive bounds are booleans")
        elif key in ("minimum", "maximum") and abs(value) > _FLOAT_EXACT:
            # kube-apiserver reads bounds as float64: int64's limits round past them and
            # every value is then refused ("Maximum boundary value must be of type
            # integer"); an integer field is int64 anyway, so the bound says nothing.
            continue
        else:
            out[key] = value
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = _structural(extra, depth + 1)
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


_FLOAT_EXACT = 2**53  # the largest integer a float64 holds exactly


_KEY_ORDER = ["type", "description", "enum", "format", "minimum", "maximum", "minLength"]
_KEY_ORDER += ["maxLength", "pattern", "minItems", "maxItems", "required"]


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    # A reader finds a node's type and constraints first, its children and rules after.
    def rank(key: str) -> tuple[int, str]:
        return (_KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER), key)

    return {key: node[key] for key in sorted(node, key=rank)}


def _loose(description: str | None, named: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if named:
        schema["required"] = ["name"]
        schema["properties"] = {"name": {"type": "string"}}
    if description:
        schema["description"] = description
    return schema


def _has(field: str) -> str:
    return f"has(self.{field})"


def spec_schema(loose: tuple[str, ...] = LOOSE_FIELDS) -> dict[str, Any]:
    raw = TaskRunSpec.model_json_schema(by_alias=True)
    inlined = _inline(raw, raw.get("$defs", {}))
    for name in loose:
        prop = inlined["properties"][name]
        description = prop.get("description")
        if name in NAMED_LISTS:
            prop.clear()
            prop.update({"type": "array", "items": _loose(None, named=True)})
            prop["description"] = description
        else:
            prop.clear()
            prop.update(_loose(description, named=False))
    schema = _structural(inlined, depth=0)
    props = schema["properties"]
    for name in NAMED_LISTS:
        props[name]["x-kubernetes-list-type"] = "map"
        props[name]["x-kubernetes-list-map-keys"] = ["name"]
    _add_spec_rules(schema)
    _bound_rule_lists(schema)
    return schema


# kube-apiserver refuses a CRD whose CEL rules may cost more than its static budget, and it
# estimates a rule under an unbounded list as if the list filled a whole request: the
# lists above CEL rules need a maxItems (Kubernetes' pod has none; these are far above any
# real pod's count, and etcd's 1.5 MB object limit comes first anyway).
MAX_ITEMS = {"initContainers": 64, "sources": 64}
DEFAULT_MAX_ITEMS = 1024


def _has_rules(node: Any) -> bool:
    if isinstance(node, dict):
        return "x-kubernetes-validations" in node or any(_has_rules(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_rules(v) for v in node)
    return False


def _bound_rule_lists(node: dict[str, Any], name: str = "") -> None:
    if node.get("type") == "array" and _has_rules(node.get("items")):
        node.setdefault("maxItems", MAX_ITEMS.get(name, DEFAULT_MAX_ITEMS))
    for key, sub in (node.get("properties") or {}).items():
        _bound_rule_lists(sub, key)
    if isinstance(node.get("items"), dict):
        _bound_rule_lists(node["items"], name)
    if isinstance(node.get("additionalProperties"), dict):
        _bound_rule_lists(node["additionalProperties"], name)


def _add_spec_rules(schema: dict[str, Any]) -> None:
    props = schema["properties"]
    # Transition rules (oldSelf) are only checked on update, where both values exist.
    for name, prop in props.items():
        if name == "cancel":
            rule = {"rule": "self || !oldSelf", "message": "cannot go back from true to false"}
        else:
            rule = {"rule": "self == oldSelf", "message": _IMMUTABLE_MESSAGE}
        prop["x-kubernetes-validations"] = [rule, *prop.get("x-kubernetes-validations", [])]
    optional = [n for n in sorted(props) if n not in schema.get("required", []) and n != "cancel"]
    presence = " && ".join(f"{_has(n)} == has(oldSelf.{n})" for n in optional)
    base = (
        f"(has(self.baseContainerName) ? self.baseContainerName : '{DEFAULT_BASE_CONTAINER_NAME}')"
    )
    schema["x-kubernetes-validations"] = [
        {
            "rule": presence,
            "message": "spec fields cannot be added or removed after creation"
            " (only spec.cancel may change)",
        },
        {
            "rule": "!has(oldSelf.cancel) || !oldSelf.cancel || has(self.cancel)",
            "message": "spec.cancel cannot be removed once true",
        },
        {
            "rule": "!has(self.initContainers) || self.initContainers.all(c,"
            f" c.name != {base} && c.name != '{XCOM_SIDECAR_NAME}')",
            "message": "initContainers names must differ from baseContainerName"
            f" and from {XCOM_SIDECAR_NAME}",
            "fieldPath": ".initContainers",
        },
    ]


# The status a TaskRun has before the controller's first write (Gateway API's pattern): the
# API server fills it in on create and on every read, so kstatus (Flux `wait`, kpt) sees
# Reconciling=True and says InProgress instead of calling a condition-less object Current,
# without a controller write per run. The same conditions the controller writes for
# Pending; no `phase`, which is how the controller, Argo CD's check and the CLI tell it from
# a reported status. The fixed epoch time keeps every read of it identical.
DEFAULT_STATUS_MESSAGE = "Waiting for the controller"
DEFAULT_STATUS_TIME = "1970-01-01T00:00:00Z"
DEFAULT_STATUS: dict[str, Any] = {
    "conditions": [
        {
            "type": type_,
            "status": status,
            "reason": str(Reason.PENDING),
            "message": DEFAULT_STATUS_MESSAGE,
            "lastTransitionTime": DEFAULT_STATUS_TIME,
        }
        for type_, status in (
            (CONDITION_SUCCEEDED, "Unknown"),
            (CONDITION_READY, "Unknown"),
            (CONDITION_RECONCILING, "True"),
        )
    ]
}


def status_schema() -> dict[str, Any]:
    raw = TaskRunStatus.model_json_schema(by_alias=True)
    schema = _structural(_inline(raw, raw.get("$defs", {})), depth=0)
    schema["default"] = DEFAULT_STATUS
    return schema


def build_crd(loose: tuple[str, ...] = LOOSE_FIELDS) -> dict[str, Any]:
    """The CustomResourceDefinition (apiextensions.k8s.io/v1) for TaskRun.

    `loose` names the spec fields kept as preserve-unknown-fields objects.
    """
    spec = spec_schema(loose)
    spec["description"] = "What to run (KubernetesPodOperator's parameters) and how."
    status = status_schema()
    status["description"] = "What happened; written by the controller."
    root = {
        "type": "object",
        "description": "TaskRun runs one task as one pod and reports on it.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    columns = [
        ("Phase", "string", ".status.phase", "Pending, Running, Succeeded, Failed, ..."),
        ("Reason", "string", ".status.reason", "Why the TaskRun is in this phase."),
        ("Exit", "integer", ".status.exitCode", "Exit code of the base container."),
        ("Pod", "string", ".status.podName", "Pod of the current attempt."),
        ("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
        ("Duration", "string", ".status.duration", "Run time, set when finished."),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "taskrun", "app.kubernetes.io/part-of": "taskrun"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p, "description": d}
                        for n, t, p, d in columns
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render_yaml(crd: dict[str, Any] | None = None) -> str:
    """The CRD as it is committed in crds/taskrun.yaml."""
    header = "# Generated by `python -m taskrun.api.crd` from taskrun/api: do not edit.\n"
    body = yaml.safe_dump(crd or build_crd(), sort_keys=False, width=100, allow_unicode=True)
    return header + body


if __name__ == "__main__":
    sys.stdout.write(render_yaml())
