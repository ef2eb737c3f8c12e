"""Turning validation errors into InvalidSpec messages that name the field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

# Error types whose input is worth echoing: the user sees the value that was refused.
_SILENT_INPUT = {"missing", "extra_forbidden"}


def field_path(loc: tuple[int | str, ...], prefix: str = "spec") -> str:
    """("envVars", 0, "name") -> "spec.envVars[0].name"."""
    path = prefix
    for part in loc:
        if part == "[key]":
            # pydantic marks a refused dict key this way; the key itself is the part before.
            path += " (key)"
        elif isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += f".{part}"
        else:
            path = str(part)
    return path or "."


def _describe(error: ErrorDetails) -> str:
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] in _SILENT_INPUT or error["type"].startswith("value_error"):
        return message
    return f"{message} (got {_short(error['input'])})"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_validation_error(err: ValidationError, prefix: str = "spec") -> str:
    """One line per problem: "spec.field.path: message (got actual)"."""
    lines = [
        f"{field_path(tuple(e['loc']), prefix)}: {_describe(e)}"
        for e in err.errors(include_url=False)
    ]
    return "\n".join(lines)
