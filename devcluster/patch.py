"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

from devcluster.errors import ApiError, FieldError, bad_request

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

# Patch merge keys of the built-in types, by the last path segment of the list.
# Lists not named here are replaced whole, as in Kubernetes.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "ephemeralContainerStatuses": "name",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
    "addresses": "type",
}
# Lists of scalars merged as sets.
_SET_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# kube-apiserver answers any JSON patch that does not apply (a failed test, a path that is
# not there, an unknown op) with this bare 422: the library's reason is not passed on.
_NOT_APPLIED = "the server rejected our request due to an error in our request"


class _Failed(Exception):
    """One operation did not apply."""


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def decode_error(value: Any, go_type: str) -> ApiError:
    """The 400 for a patch body of the wrong JSON type, in encoding/json's words."""
    return bad_request(
        f"error decoding patch: json: cannot unmarshal {_go_type(value)} into Go value of "
        f"type {go_type}"
    )


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise _Failed
    if pointer == "":
        return []
    # As evanphx/json-patch: whatever precedes the first "/" is dropped, leading or not.
    return [_unescape(t) for t in pointer.split("/")[1:]]


def _resolve(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise _Failed
            cur = cur[token]
        elif isinstance(cur, list):
            try:
                index = int(token)
            except ValueError:
                raise _Failed from None
            if not 0 <= index < len(cur):
                raise _Failed
            cur = cur[index]
        else:
            raise _Failed
    return cur


def _put(doc: Any, tokens: list[str], value: Any, *, replace: bool) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        # A replace of a key that is not there sets it (evanphx/json-patch v4, which
        # kube-apiserver uses, does not insist).
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
            return doc
        try:
            index = int(last)
        except ValueError:
            raise _Failed from None
        if replace:
            if not 0 <= index < len(parent):
                raise _Failed
            parent[index] = value
        else:
            if not 0 <= index <= len(parent):
                raise _Failed
            parent.insert(index, value)
    else:
        raise _Failed
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _Failed
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _Failed
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            index = int(last)
        except ValueError:
            raise _Failed from None
        if not 0 <= index < len(parent):
            raise _Failed
        return parent.pop(index)
    raise _Failed


def _apply_op(doc: Any, op: Any) -> Any:
    if not isinstance(op, dict):
        raise _Failed
    kind = op.get("op")
    tokens = _split_pointer(op.get("path"))
    if kind == "add":
        return _put(doc, tokens, copy.deepcopy(op.get("value")), replace=False)
    if kind == "replace":
        return _put(doc, tokens, copy.deepcopy(op.get("value")), replace=True)
    if kind == "remove":
        _remove(doc, tokens)
        return doc
    if kind in ("move", "copy"):
        from_tokens = _split_pointer(op.get("from"))
        if kind == "move":
            value = _remove(doc, from_tokens)
        else:
            value = copy.deepcopy(_resolve(doc, from_tokens))
        return _put(doc, tokens, value, replace=False)
    if kind == "test":
        try:
            actual = _resolve(doc, tokens)
        except _Failed:
            actual = None
        if actual != op.get("value"):
            raise _Failed
        return doc
    raise _Failed


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch; any operation that does not apply (a failed ``test`` too)
    is kube-apiserver's bare 422 Invalid, which kopf and client-go expect."""
    if not isinstance(ops, list):
        raise decode_error(ops, "[]handlers.jsonPatchOp")
    doc = copy.deepcopy(target)
    for op in ops:
        try:
            doc = _apply_op(doc, op)
        except _Failed:
            raise ApiError(422, _NOT_APPLIED) from None
    return doc


def strategic_merge_patch(target: Any, patch: Any, path: str = "") -> Any:
    """Strategic merge patch with the built-in types' merge keys and directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [x for x in result[name] if x not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, f"{path}.{key}")
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(name: str, current: Any, patch: list[Any]) -> list[Any]:
    current = current if isinstance(current, list) else []
    if name in _SET_LISTS:
        out = list(current)
        for item in patch:
            if item not in out:
                out.append(copy.deepcopy(item))
        return out
    merge_key = _MERGE_KEYS.get(name)
    if merge_key is None or not all(isinstance(x, dict) for x in patch):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [copy.deepcopy(x) for x in patch if x.get("$patch") != "replace"]
        return copy.deepcopy(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if x.get("$patch") != "replace"]
    out = [copy.deepcopy(x) for x in current]
    for item in patch:
        key_value = item.get(merge_key)
        index = next(
            (i for i, x in enumerate(out) if isinstance(x, dict) and x.get(merge_key) == key_value),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
            continue
        if index is None:
            out.append(strategic_merge_patch({}, item))
        else:
            out[index] = strategic_merge_patch(out[index], item)
    return out


def apply_patch(target: Any, patch: Any, content_type: str) -> Any:
    """Dispatch on the PATCH content type."""
    ctype = content_type.split(";")[0].strip()
    if ctype in (MERGE, STRATEGIC) and not isinstance(patch, dict):
        raise decode_error(patch, "map[string]interface {}")
    if ctype == MERGE:
        return merge_patch(target, patch)
    if ctype == JSON:
        return json_patch(target, patch)
    if ctype == STRATEGIC:
        return strategic_merge_patch(target, patch)
    raise ApiError(415, "415: Unsupported Media Type")


__all__ = ["FieldError", "apply_patch", "json_patch", "merge_patch", "strategic_merge_patch"]
