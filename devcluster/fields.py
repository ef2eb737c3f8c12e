"""The fields of the built-in kinds, as kube-apiserver's decoder knows them.

kube-apiserver decodes a built-in object into its Go struct: a field the struct does not
have is dropped (with a warning, ``unknown field "spec.bogus"``) or, with
``fieldValidation=Strict``, refused. devcluster learns the structs from the OpenAPI schemas
kubernetes-validate ships (a dev dependency); without it, nothing is pruned.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

_VERSION = "v1.37.0-local-strict"
_PREFIX = "/api/_definitions.json#/$defs/"
_LOCAL = "#/$defs/"


@functools.cache
def _definitions() -> dict[str, Any]:
    try:
        import kubernetes_validate  # optional: a dev dependency
    except ImportError:
        return {}
    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / _VERSION
    try:
        return dict(json.loads((path / "_definitions.json").read_text())["$defs"])
    except (OSError, ValueError, KeyError):
        return {}


@functools.cache
def _by_kind() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in _definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            index[(gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))] = name
    return index


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    while isinstance(ref, str):
        name = ref.removeprefix(_PREFIX).removeprefix(_LOCAL)
        schema = _definitions().get(name) or {}
        ref = schema.get("$ref")
    return schema


def known(group: str, version: str, kind: str) -> bool:
    """Whether the kind's struct is known (else nothing is pruned)."""
    return (group, version, kind) in _by_kind()


def prune(group: str, version: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """Drop the fields the kind's Go struct does not have; their paths, as the strict
    decoder names them (``spec.containers[0].bogus``)."""
    name = _by_kind().get((group, version, kind))
    if name is None:
        return []
    dropped: list[str] = []
    _prune(obj, _definitions()[name], "", dropped)
    return dropped


def _prune(value: Any, schema: dict[str, Any], path: str, dropped: list[str]) -> None:
    schema = _resolve(schema)
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if isinstance(properties, dict):
            for key in list(value):
                sub = properties.get(key)
                where = f"{path}.{key}" if path else key
                if sub is None:
                    if extra is False or extra is None:
                        del value[key]
                        dropped.append(where)
                    continue
                _prune(value[key], sub, where, dropped)
        elif isinstance(extra, dict):
            for key, item in value.items():
                _prune(item, extra, f"{path}[{key}]", dropped)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", dropped)
