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


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {pointer!r}")
    return [_unescape(t) for t in pointer[1:].split("/")]


def _resolve(doc: Any, tokens: list[str], pointer: str) -> Any:
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise _missing(pointer)
            cur = cur[token]
        elif isinstance(cur, list):
            try:
                cur = cur[int(token)]
            except (ValueError, IndexError):
                raise _missing(pointer) from None
        else:
            raise _missing(pointer)
    return cur


def _missing(pointer: str) -> ApiError:
    # The apiserver answers an unresolvable JSON pointer with 422.
    return ApiError(
        422,
        f"the server rejected our request due to an error in our request: "
        f"jsonpatch: path {pointer!r} not found",
    )


def _put(doc: Any, tokens: list[str], value: Any, pointer: str, *, replace: bool) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _missing(pointer)
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
            return doc
        try:
            index = int(last)
        except ValueError:
            raise _missing(pointer) from None
        if replace:
            if not 0 <= index < len(parent):
                raise _missing(pointer)
            parent[index] = value
        else:
            if not 0 <= index <= len(parent):
                raise _missing(pointer)
            parent.insert(index, value)
    else:
        raise _missing(pointer)
    return doc


def _remove(doc: Any, tokens: list[str], pointer: str) -> Any:
    if not tokens:
        raise bad_request("jsonpatch: cannot remove the document root")
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _missing(pointer)
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError):
            raise _missing(pointer) from None
    raise _missing(pointer)


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch; a failed ``test`` is a 422 Invalid as kopf expects."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        kind, pointer = op["op"], op["path"]
        tokens = _split_pointer(pointer)
        if kind == "add":
            doc = _put(doc, tokens, copy.deepcopy(op.get("value")), pointer, replace=False)
        elif kind == "replace":
            doc = _put(doc, tokens, copy.deepcopy(op.get("value")), pointer, replace=True)
        elif kind == "remove":
            _remove(doc, tokens, pointer)
        elif kind in ("move", "copy"):
            source = op.get("from", "")
            from_tokens = _split_pointer(source)
            if kind == "move":
                value = _remove(doc, from_tokens, source)
            else:
                value = copy.deepcopy(_resolve(doc, from_tokens, source))
            doc = _put(doc, tokens, value, pointer, replace=False)
        elif kind == "test":
            try:
                actual = _resolve(doc, tokens, pointer)
            except ApiError:
                actual = None
            if actual != op.get("value"):
                raise ApiError(
                    422,
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {pointer} failed: test failed",
                    details={
                        "causes": [
                            {
                                "reason": "FieldValueInvalid",
                                "field": pointer,
                                "message": "test failed",
                            }
                        ]
                    },
                )
        else:
            raise bad_request(f"unsupported json patch operation: {kind!r}")
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
    if ctype == MERGE:
        return merge_patch(target, patch)
    if ctype == JSON:
        return json_patch(target, patch)
    if ctype == STRATEGIC:
        return strategic_merge_patch(target, patch)
    raise ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media "
        f"types include: {JSON}, {MERGE}, {STRATEGIC}, {APPLY}",
    )


__all__ = ["FieldError", "apply_patch", "json_patch", "merge_patch", "strategic_merge_patch"]
