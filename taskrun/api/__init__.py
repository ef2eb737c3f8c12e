"""The TaskRun API (taskrun.dev/v1alpha1): models of spec and status, the one source of truth."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taskrun.api.durations import format_duration, human_duration
from taskrun.api.handover import holds_pod, logs_in_status
from taskrun.api.names import (
    AIRFLOW_DAG_LABEL,
    AIRFLOW_IDENTITY_LABELS,
    AIRFLOW_MAP_INDEX_LABEL,
    AIRFLOW_RUN_LABEL,
    AIRFLOW_TASK_LABEL,
    AIRFLOW_TRY_LABEL,
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
    ANNOTATION_SPEC_HASH,
    ANNOTATION_UID,
    API_VERSION,
    CRD_NAME,
    DEFAULT_BASE_CONTAINER_NAME,
    DEFAULT_LOG_TAIL_BYTES,
    DEFAULT_LOG_TAIL_LINES,
    DEFAULT_MAX_HOLD_SECONDS,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_STARTUP_TIMEOUT_SECONDS,
    GROUP,
    INLINE_RESULT_MAX_BYTES,
    KIND,
    LABEL_ATTEMPT,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGED_BY,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    XCOM_INLINE_MAX_ENV,
    XCOM_MOUNT_PATH,
    XCOM_RESULT_PATH,
    XCOM_SIDECAR_NAME,
    XCOM_VOLUME_NAME,
)
from taskrun.api.reasons import (
    CONDITION_SUCCEEDED,
    FINISHED_PHASES,
    OnFinishAction,
    OnKillAction,
    Phase,
    Reason,
)

if TYPE_CHECKING:
    from taskrun.api.errors import field_path, format_validation_error
    from taskrun.api.kpo import (
        KPO_IGNORED_ARGUMENTS,
        KPO_OPERATOR_ARGUMENTS,
        KPO_REFUSED_ARGUMENTS,
        KPO_SPEC_FIELDS,
    )
    from taskrun.api.resource import TaskRun
    from taskrun.api.spec import RetryBackoff, SecretMount, TaskRunSpec, spec_hash
    from taskrun.api.status import (
        AttemptRecord,
        Condition,
        LogsStatus,
        TaskRunStatus,
        WarningEvent,
    )

# The models need pydantic, which takes most of a second to import: they are imported on
# first use, so that names-only users (the kubectl plugin, docs/cli.md) start fast.
_LAZY = {
    "KPO_IGNORED_ARGUMENTS": "kpo",
    "KPO_OPERATOR_ARGUMENTS": "kpo",
    "KPO_REFUSED_ARGUMENTS": "kpo",
    "KPO_SPEC_FIELDS": "kpo",
    "field_path": "errors",
    "format_validation_error": "errors",
    "TaskRun": "resource",
    "RetryBackoff": "spec",
    "SecretMount": "spec",
    "TaskRunSpec": "spec",
    "spec_hash": "spec",
    "AttemptRecord": "status",
    "Condition": "status",
    "LogsStatus": "status",
    "TaskRunStatus": "status",
    "WarningEvent": "status",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def validate_spec(spec: dict[str, Any]) -> TaskRunSpec:
    """Parse a TaskRun spec as it comes from the API; raises pydantic.ValidationError."""
    from taskrun.api.spec import TaskRunSpec

    return TaskRunSpec.model_validate(spec)


__all__ = [
    "AIRFLOW_DAG_LABEL",
    "AIRFLOW_IDENTITY_LABELS",
    "AIRFLOW_MAP_INDEX_LABEL",
    "AIRFLOW_RUN_LABEL",
    "AIRFLOW_TASK_LABEL",
    "AIRFLOW_TRY_LABEL",
    "ANNOTATION_HOLD_POD",
    "ANNOTATION_LOGS_ACKED",
    "ANNOTATION_LOGS_FROM_STATUS",
    "ANNOTATION_SPEC_HASH",
    "ANNOTATION_UID",
    "API_VERSION",
    "CONDITION_SUCCEEDED",
    "CRD_NAME",
    "DEFAULT_BASE_CONTAINER_NAME",
    "DEFAULT_LOG_TAIL_BYTES",
    "DEFAULT_LOG_TAIL_LINES",
    "DEFAULT_MAX_HOLD_SECONDS",
    "DEFAULT_MAX_RESULT_BYTES",
    "DEFAULT_STARTUP_TIMEOUT_SECONDS",
    "FINISHED_PHASES",
    "GROUP",
    "INLINE_RESULT_MAX_BYTES",
    "KIND",
    "KPO_IGNORED_ARGUMENTS",
    "KPO_OPERATOR_ARGUMENTS",
    "KPO_REFUSED_ARGUMENTS",
    "KPO_SPEC_FIELDS",
    "LABEL_ATTEMPT",
    "LABEL_MANAGED_BY",
    "LABEL_NAME",
    "MANAGED_BY",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "XCOM_INLINE_MAX_ENV",
    "XCOM_MOUNT_PATH",
    "XCOM_RESULT_PATH",
    "XCOM_SIDECAR_NAME",
    "XCOM_VOLUME_NAME",
    "AttemptRecord",
    "Condition",
    "LogsStatus",
    "OnFinishAction",
    "OnKillAction",
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
    "holds_pod",
    "human_duration",
    "logs_in_status",
    "spec_hash",
    "validate_spec",
]
