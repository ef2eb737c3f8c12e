"""CRD structural schemas: pruning, defaulting, OpenAPI and CEL validation.

The OpenAPI v3 schema is translated to JSON Schema (draft 4, whose boolean
``exclusiveMinimum`` matches OpenAPI 3.0) and checked with ``jsonschema``;
errors are rendered with the apiserver's wording so that tests and users see
what a real cluster says.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from typing import Any

import jsonschema

from devcluster.errors import FieldError

try:  # cel-python is a dev dependency; without it CEL rules are not enforced.
    import celpy
except ImportError:  # pragma: no cover
    celpy = None  # type: ignore[assignment]

_PASSTHROUGH = (
    "required",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
)


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate a structural OpenAPI v3 schema to JSON Schema draft 4."""
    out: dict[str, Any] = {k: schema[k] for k in _PASSTHROUGH if k in schema}
    if schema.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "type" in schema:
        out["type"] = schema["type"]
    if "properties" in schema:
        out["properties"] = {k: to_json_schema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("items"), dict):
        out["items"] = to_json_schema(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(schema["additionalProperties"])
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            subs = [to_json_schema(s) for s in schema[combinator]]
            if combinator in out:
                # int-or-string already took anyOf: nest the declared one under allOf.
                out.setdefault("allOf", []).append({combinator: subs})
            else:
                out[combinator] = subs
    if "not" in schema:
        out["not"] = to_json_schema(schema["not"])
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


def prune(value: Any, schema: dict[str, Any], path: str = "", *, root: bool = True) -> list[str]:
    """Drop fields the schema does not know, in place; returns the dropped paths."""
    dropped: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        for key in list(value):
            child = _join(path, key)
            if root and key in ("apiVersion", "kind", "metadata"):
                continue
            known = props.get(key) or (additional if isinstance(additional, dict) else None)
            if known is not None and value[key] is None and not known.get("nullable"):
                # Since 1.20 the apiserver drops nulls of non-nullable fields before
                # defaulting; they are not unknown fields, so they are not reported.
                del value[key]
                continue
            if key in props:
                dropped += prune(value[key], props[key], child, root=False)
            elif isinstance(additional, dict):
                dropped += prune(value[key], additional, child, root=False)
            elif additional is True or preserve:
                continue
            elif schema.get("type") == "object" or props:
                del value[key]
                dropped.append(child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            dropped += prune(item, schema["items"], f"{path}[{i}]", root=False)
    return dropped


def apply_defaults(value: Any, schema: dict[str, Any]) -> None:
    """Fill in ``default`` values, in place, as the apiserver does on write."""
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key, item in value.items():
                if key not in (schema.get("properties") or {}):
                    apply_defaults(item, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


def defaults_only(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The part of ``schema`` that leads to a ``default``; None when it has none.

    Reads apply the defaults again (kube-apiserver defaults what it reads from etcd, so
    a default added to a CRD shows on objects stored before): this trimmed schema makes
    that cheap for a CRD with few defaults.
    """
    out: dict[str, Any] = {}
    if "default" in schema:
        out["default"] = schema["default"]
    props = {
        key: trimmed
        for key, sub in (schema.get("properties") or {}).items()
        if (trimmed := defaults_only(sub)) is not None
    }
    if props:
        out["properties"] = props
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict) and (trimmed := defaults_only(sub)) is not None:
            out[key] = trimmed
    return out or None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _render(value: Any) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


ABSENT = object()


def lookup(obj: Any, path: str) -> Any:
    """The value at a field path such as ``spec.items[0].name``; a sentinel when absent."""
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = part.strip("[]")
            if not isinstance(obj, list) or not index.isdigit() or int(index) >= len(obj):
                return ABSENT
            obj = obj[int(index)]
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return ABSENT
    return obj


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _path_of(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, str(part))
    return out


def _field_error(error: jsonschema.ValidationError) -> FieldError:
    path = _path_of(error)
    v, inst, kw = error.validator_value, error.instance, error.validator
    shown = _render(inst)
    if kw == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(v)
        return FieldError("FieldValueRequired", _join(path, missing), "Required value")
    if kw == "type":
        # Kubernetes names the JSON type it got, not the value.
        got = f'"{_json_type(inst)}"'
        types = [t for t in (v if isinstance(v, list) else [v]) if t != "null"]
        return FieldError(
            "FieldValueTypeInvalid",
            path,
            f"Invalid value: {got}: {path} in body must be of type "
            f"{types[0] if types else 'null'}: {got}",
        )
    if kw == "enum":
        supported = ", ".join(_render(x) for x in v if x is not None)
        return FieldError(
            "FieldValueNotSupported",
            path,
            f"Unsupported value: {shown}: supported values: {supported}",
        )
    if kw in ("minimum", "maximum"):
        exclusive = error.schema.get("exclusiveMinimum" if kw == "minimum" else "exclusiveMaximum")
        word = "greater" if kw == "minimum" else "less"
        op = f"{word} than" if exclusive else f"{word} than or equal to"
        return FieldError(
            "FieldValueInvalid", path, f"Invalid value: {shown}: {path} in body should be {op} {v}"
        )
    if kw == "maxLength":
        return FieldError("FieldValueTooLong", path, f"Too long: may not be more than {v} bytes")
    if kw == "minLength":
        return FieldError(
            "FieldValueInvalid",
            path,
            f"Invalid value: {shown}: {path} in body should be at least {v} chars long",
        )
    if kw == "pattern":
        return FieldError(
            "FieldValueInvalid", path, f"Invalid value: {shown}: {path} in body should match '{v}'"
        )
    if kw == "maxItems":
        return FieldError(
            "FieldValueTooMany", path, f"Too many: {len(inst)}: must have at most {v} items"
        )
    if kw == "minItems":
        return FieldError(
            "FieldValueInvalid",
            path,
            f"Invalid value: {len(inst)}: {path} in body should have at least {v} items",
        )
    if kw == "anyOf" and any(s.get("type") == "integer" for s in v if isinstance(s, dict)):
        return FieldError(
            "FieldValueTypeInvalid",
            path,
            f"Invalid value: {shown}: {path} in body must be of type integer or string: {shown}",
        )
    return FieldError("FieldValueInvalid", path, f"Invalid value: {shown}: {error.message}")


class StructuralSchema:
    """One CRD version's schema, compiled for validation."""

    def __init__(self, openapi: dict[str, Any] | None) -> None:
        self.openapi = openapi or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        root = to_json_schema(self.openapi)
        props = root.setdefault("properties", {})
        # The apiserver validates metadata itself; the CRD may only constrain name.
        props.pop("metadata", None)
        self._root = root
        self._validator = jsonschema.Draft4Validator(root)
        # Validators that skip some top-level properties (accepting any value there), by
        # the skipped names; and the last object of each name that was found schema-clean.
        self._partial: dict[frozenset[str], Any] = {}
        self._clean: dict[tuple[str, str], dict[str, Any]] = {}
        # metadata is the apiserver's own: the CRD's defaults never reach it.
        self.read_defaults = defaults_only({**self.openapi, "properties": self._without_metadata()})

    def _without_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in (self.openapi.get("properties") or {}).items() if k != "metadata"}

    def prune(self, obj: dict[str, Any]) -> list[str]:
        return prune(obj, self.openapi)

    def default(self, obj: dict[str, Any]) -> None:
        apply_defaults(obj, {**self.openapi, "properties": self._without_metadata()})

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        key = _name_of(obj)
        validator = self._validator
        if old is not None and self._clean.get(key) is old:
            # The stored object had no schema error under this very schema: a top-level
            # property it still has unchanged has none either (validation is a function of
            # the value), so only the changed ones are walked. Same errors, less work:
            # a status write no longer walks the whole spec.
            same = frozenset(
                k for k in self._root["properties"] if k in obj and k in old and obj[k] == old[k]
            )
            if same:
                validator = self._skipping(same)
        errors = sorted(
            (_field_error(e) for e in validator.iter_errors(obj)),
            key=lambda e: e.field,
        )
        if not errors:
            self._clean[key] = obj
        else:
            self._clean.pop(key, None)
        if not errors:
            errors = list(_list_key_errors(self.openapi, obj, ""))
        if not errors:
            errors = list(_cel_errors(self.openapi, obj, old, "", old is not None))
        if old is not None:
            # Validation ratcheting (on by default since 1.30): an update may keep a value
            # that a newer schema would refuse, as long as it does not change it.
            errors = [e for e in errors if lookup(obj, e.field) != lookup(old, e.field)]
        return errors

    def _skipping(self, names: frozenset[str]) -> Any:
        validator = self._partial.get(names)
        if validator is None:
            props = self._root["properties"]
            root = {**self._root, "properties": {k: {} if k in names else props[k] for k in props}}
            validator = self._partial[names] = jsonschema.Draft4Validator(root)
        return validator

    def forget(self, obj: dict[str, Any]) -> None:
        """The object is gone from the store."""
        key = _name_of(obj)
        if self._clean.get(key) is obj:
            del self._clean[key]


def _name_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return "", ""
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _list_key_errors(schema: dict[str, Any], value: Any, path: str) -> Iterator[FieldError]:
    """Duplicates in lists typed `map` (by their keys) or `set`, refused as the apiserver does."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (additional if isinstance(additional, dict) else None)
            if sub is not None:
                yield from _list_key_errors(sub, item, _join(path, key))
    elif isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen: set[str] = set()
        for i, item in enumerate(value):
            if list_type == "map" and keys and isinstance(item, dict):
                identity = json.dumps({k: item.get(k) for k in keys}, sort_keys=True)
            elif list_type == "set":
                identity = json.dumps(item, sort_keys=True)
            else:
                identity = ""
            if identity and identity in seen:
                yield FieldError(
                    "FieldValueDuplicate", f"{path}[{i}]", f"Duplicate value: {identity}", item
                )
            seen.add(identity)
            if isinstance(schema.get("items"), dict):
                yield from _list_key_errors(schema["items"], item, f"{path}[{i}]")


@functools.lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def compile_rules(openapi: dict[str, Any]) -> list[FieldError]:
    """Compile every x-kubernetes-validations rule; errors for those that fail."""
    errors: list[FieldError] = []
    for path, rules in _walk_rules(openapi, "spec.validation.openAPIV3Schema"):
        for i, rule in enumerate(rules):
            if celpy is None:
                break
            try:
                _program(rule["rule"])
            except Exception as exc:  # celpy raises several parse error types
                errors.append(
                    FieldError(
                        "FieldValueInvalid",
                        f"{path}.x-kubernetes-validations[{i}].rule",
                        f"Invalid value: {_render(rule['rule'])}: compilation failed: {exc}",
                    )
                )
    return errors


def _walk_rules(schema: dict[str, Any], path: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    if schema.get("x-kubernetes-validations"):
        yield path, schema["x-kubernetes-validations"]
    for key, sub in (schema.get("properties") or {}).items():
        yield from _walk_rules(sub, f"{path}.properties[{key}]")
    if isinstance(schema.get("items"), dict):
        yield from _walk_rules(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk_rules(schema["additionalProperties"], f"{path}.additionalProperties")


_MISSING = object()


def _cel_errors(
    schema: dict[str, Any], value: Any, old: Any, path: str, has_old: bool
) -> Iterator[FieldError]:
    if celpy is None or value is None:
        return
    if has_old and value == old:
        # Ratcheting: an unchanged value is not judged again, which also keeps status
        # writes from re-running every spec rule.
        return
    for rule in schema.get("x-kubernetes-validations") or ():
        text = rule["rule"]
        transition = "oldSelf" in text
        if transition and not has_old:
            continue
        activation = {"self": celpy.json_to_cel(value)}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = _program(text).evaluate(activation)
            ok = result is True or (not isinstance(result, Exception) and bool(result))
            failure = None if ok else _rule_message(rule)
        except Exception as exc:  # evaluation errors reject the object, as in Kubernetes
            failure = f"{_rule_message(rule)}: {exc}"
        if failure:
            field = path + (rule.get("fieldPath") or "")
            field = field.lstrip(".") if field else "<nil>"
            reason = rule.get("reason") or "FieldValueInvalid"
            prefix = {
                "FieldValueForbidden": "Forbidden",
                "FieldValueRequired": "Required value",
                "FieldValueDuplicate": f"Duplicate value: {_render(value)}",
            }.get(reason, f"Invalid value: {_render(value)}")
            yield FieldError(reason, field, f"{prefix}: {failure}", value)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (additional if isinstance(additional, dict) else None)
            if sub is None:
                continue
            old_item = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
            yield from _cel_errors(
                sub,
                item,
                None if old_item is _MISSING else old_item,
                _join(path, key),
                has_old and old_item is not _MISSING,
            )
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        olds: dict[tuple[Any, ...], Any] = {}
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list):
            olds = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(value):
            key = tuple(item.get(k) for k in keys) if isinstance(item, dict) and keys else None
            old_item = olds.get(key, _MISSING) if key is not None else _MISSING
            yield from _cel_errors(
                schema["items"],
                item,
                None if old_item is _MISSING else old_item,
                f"{path}[{i}]",
                has_old and old_item is not _MISSING,
            )


def _rule_message(rule: dict[str, Any]) -> str:
    return str(rule.get("message") or f"failed rule: {rule['rule']}")
