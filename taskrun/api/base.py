"""The base of every TaskRun API model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    """Strict types, camelCase aliases on the wire, unknown fields refused (typos are errors)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def count_set(model: BaseModel, fields: tuple[str, ...]) -> list[str]:
    """Wire names of `fields` that are set; a name ending in "!" counts only when non-empty."""
    by_alias = {info.alias or name: name for name, info in type(model).model_fields.items()}
    found = []
    for field in fields:
        wire = field.rstrip("!")
        value = getattr(model, by_alias[wire])
        if value is not None and (not field.endswith("!") or value):
            found.append(wire)
    return found


def check_one_of(
    model: BaseModel, fields: tuple[str, ...], low: int, high: int, message: str
) -> None:
    """Kubernetes' "exactly one of" / "at most one of" rules; raises ValueError naming them."""
    found = count_set(model, fields)
    if not low <= len(found) <= high:
        raise ValueError(f"{message} (set: {', '.join(found) or 'none'})")


def one_of_cel(fields: tuple[str, ...], low: int, high: int) -> str:
    """The same rule in CEL, for the CRD."""
    terms = []
    for field in fields:
        wire = field.rstrip("!")
        present = f"has(self.{wire})"
        if field.endswith("!"):
            present = f"({present} && self.{wire} != '')"
        terms.append(f"({present} ? 1 : 0)")
    count = " + ".join(terms)
    if low == high:
        return f"{count} == {low}"
    return f"{count} >= {low} && {count} <= {high}" if low else f"{count} <= {high}"
