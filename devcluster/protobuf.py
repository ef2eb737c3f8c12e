"""Decode the protobuf bodies kubectl's typed clients send (``kubectl create ns|cm|secret``).

Only request bodies of a few simple kinds are understood; responses are always
JSON, which client-go accepts whatever it asked for.
"""

from __future__ import annotations

import base64
from typing import Any

from devcluster.errors import ApiError

MAGIC = b"k8s\x00"

# Field number -> (name, kind). Kinds: str, bytes, int, bool, msg:<schema>, map:str|bytes,
# and a leading "*" for repeated fields.
_SCHEMAS: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "msg:TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "str"), 2: ("kind", "str")},
    "ObjectMeta": {
        1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
        5: ("uid", "str"), 6: ("resourceVersion", "str"), 7: ("generation", "int"),
        11: ("labels", "map:str"), 12: ("annotations", "map:str"),
        13: ("ownerReferences", "*msg:OwnerReference"), 14: ("finalizers", "*str"),
    },
    "OwnerReference": {
        1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"), 5: ("apiVersion", "str"),
        6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool"),
    },
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "*str")},
    "ConfigMap": {
        1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:str"),
        3: ("binaryData", "map:bytes"), 4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "str"),
        4: ("stringData", "map:str"), 5: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "msg:ObjectMeta"), 4: ("automountServiceAccountToken", "bool"),
    },
}  # fmt: skip


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _decode(buf: bytes, schema: str) -> dict[str, Any]:
    fields = _SCHEMAS[schema]
    out: dict[str, Any] = {}
    for number, raw in _fields(buf):
        if number not in fields:
            continue
        name, kind = fields[number]
        repeated = kind.startswith("*")
        kind = kind.lstrip("*")
        if isinstance(raw, int):
            value: Any = bool(raw) if kind == "bool" else raw
        elif kind.startswith("map:"):
            entry = {n: v for n, v in _fields(raw) if isinstance(v, bytes)}
            item = entry.get(2, b"")
            text = base64.b64encode(item).decode() if kind == "map:bytes" else item.decode()
            out.setdefault(name, {})[entry.get(1, b"").decode()] = text
            continue
        elif kind == "str":
            value = raw.decode()
            if not value and not repeated:
                continue  # proto3 sends empty strings; JSON clients omit them
        elif kind == "bytes":
            value = raw
        else:
            value = _decode(raw, kind.split(":", 1)[1])
        if repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; 415 for kinds it does not know."""
    if not body.startswith(MAGIC):
        raise ApiError(415, "protobuf body without the k8s envelope")
    try:
        unknown = _decode(body[len(MAGIC) :], "Unknown")
        type_meta = unknown.get("typeMeta") or {}
        kind = type_meta.get("kind", "")
        if kind not in _SCHEMAS or kind in ("Unknown", "TypeMeta", "ObjectMeta"):
            raise ApiError(
                415,
                f"devcluster cannot decode protobuf {kind or 'objects'}; send application/json",
            )
        obj = _decode(unknown.get("raw", b""), kind)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid protobuf body: {exc}") from None
    return {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind, **obj}
