"""The TaskRun resource: identity constants and the whole object."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from taskrun.api.base import ApiModel
from taskrun.api.k8s import ObjectMeta
from taskrun.api.names import (  # noqa: F401 (re-exported: their old home)
    API_VERSION,
    CRD_NAME,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from taskrun.api.spec import TaskRunSpec
from taskrun.api.status import TaskRunStatus


class TaskRun(ApiModel):
    """A TaskRun as stored by the API server."""

    # Server-side metadata carries fields this model does not name; only spec is strict.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)

    # A Literal type and its default take the value itself, not a name (mypy); a test holds
    # them to names.py (tests/unit/api/test_api_kpo_map.py).
    api_version: Literal["taskrun.dev/v1alpha1"] = Field(
        default="taskrun.dev/v1alpha1", alias="apiVersion", description=f"{API_VERSION}."
    )
    kind: Literal["TaskRun"] = Field(default="TaskRun", description=f"{KIND}.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: TaskRunSpec = Field(description="What to run and how.")
    status: TaskRunStatus | None = Field(default=None, description="What happened.")
