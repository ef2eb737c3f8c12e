"""The TaskRun API (taskrun.dev/v1alpha1): models of spec and status, the one source of truth."""

from __future__ import annotations

from typing import Any

from taskrun.api.errors import field_path, format_validation_error
from taskrun.api.reasons import CONDITION_SUCCEEDED, OnFinishAction, Phase, Reason
from taskrun.api.resource import (
    API_VERSION,
    CRD_NAME,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    TaskRun,
)
from taskrun.api.spec import (
    DEFAULT_BASE_CONTAINER_NAME,
    XCOM_SIDECAR_NAME,
    RetryBackoff,
    SecretMount,
    TaskRunSpec,
)
from taskrun.api.status import (
    AttemptRecord,
    Condition,
    LogsStatus,
    TaskRunStatus,
    WarningEvent,
    format_duration,
)


def validate_spec(spec: dict[str, Any]) -> TaskRunSpec:
    """Parse a TaskRun spec as it comes from the API; raises pydantic.ValidationError."""
    return TaskRunSpec.model_validate(spec)


__all__ = [
    "API_VERSION",
    "CONDITION_SUCCEEDED",
    "CRD_NAME",
    "DEFAULT_BASE_CONTAINER_NAME",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "XCOM_SIDECAR_NAME",
    "AttemptRecord",
    "Condition",
    "LogsStatus",
    "OnFinishAction",
    "Phase",
    "Reason",
    "RetryBackoff",
    "SecretMount",
    "TaskRun",
    "TaskRunSpec",
    "TaskRunStatus",
    "WarningEvent",
    "field_path",
    "format_duration",
    "format_validation_error",
    "validate_spec",
]
