"""JSON for the hot paths: orjson where the value is plain JSON, the standard library else.

orjson encodes about 15x and copies (a round trip) about 2x as fast as pure Python; it
refuses what is not plain JSON (datetimes, dataclasses, subclasses, non-str keys, integers
past 64 bits) instead of converting it, and those values take the Python path unchanged.
Request bodies are still parsed by ``json.loads``: orjson reads big integers as floats.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_PLAIN_JSON_ONLY = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    try:
        return orjson.dumps(value, option=_PLAIN_JSON_ONLY)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts and lists are new; scalars are shared)."""
    if type(value) is dict or type(value) is list:
        try:
            return orjson.loads(orjson.dumps(value, option=_PLAIN_JSON_ONLY))
        except TypeError:
            return _clone(value)
    return value


def _clone(value: Any) -> Any:
    if type(value) is dict:
        return {k: _clone(v) for k, v in value.items()}
    if type(value) is list:
        return [_clone(v) for v in value]
    return value
