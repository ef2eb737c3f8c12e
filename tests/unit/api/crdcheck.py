"""Check objects against the CRD's schema the way the API server does: JSON Schema + CEL."""

from __future__ import annotations

import functools
from typing import Any

import celpy

CEL = celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    # Parsing is the slow part of cel-python; each rule is parsed once per session.
    return CEL.program(CEL.compile(rule))


def _evaluate(rule: str, new: Any, old: Any) -> bool:
    program = _program(rule)
    activation = {"self": celpy.json_to_cel(new)}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)
    return bool(program.evaluate(activation))


def cel_failures(schema: dict[str, Any], new: Any, old: Any = None, path: str = "") -> list[str]:
    """Messages of the rules that fail; transition rules only run where an old value exists."""
    failures = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"] and old is None:
            continue
        if not _evaluate(rule["rule"], new, old):
            failures.append(f"{path}: {rule['message']}")
    if isinstance(new, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in new:
                old_value = old.get(name) if isinstance(old, dict) else None
                failures += cel_failures(sub, new[name], old_value, f"{path}.{name}")
    if isinstance(new, list) and "items" in schema:
        keyed = schema.get("x-kubernetes-list-type") == "map"
        old_by_name = {i["name"]: i for i in old or []} if keyed else {}
        for index, item in enumerate(new):
            old_item = old_by_name.get(item.get("name")) if keyed else None
            failures += cel_failures(schema["items"], item, old_item, f"{path}[{index}]")
    return failures


def as_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema as JSON Schema; unknown fields refused as strict field validation does."""
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        return out
    if "properties" in node:
        out["properties"] = {k: as_json_schema(v) for k, v in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = as_json_schema(node["additionalProperties"])
    if "items" in node:
        out["items"] = as_json_schema(node["items"])
    return out
