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
