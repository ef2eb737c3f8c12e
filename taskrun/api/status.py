"""TaskRunStatus: what happened, written by the controller only."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from taskrun.api.base import ApiModel
from taskrun.api.reasons import CONDITION_SUCCEEDED, Phase
from taskrun.api.spec import MAX_RETRIES

# status.warnings keeps the most recent Warning events of the pod, no more.
MAX_WARNINGS = 10

ConditionStatus = Literal["True", "False", "Unknown"]


class StatusModel(ApiModel):
    # Status is read back from the cluster, where an older or newer controller (or kopf)
    # may have written fields this version does not know: ignore them, do not fail.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=False)


class Condition(StatusModel):
    """A Kubernetes-style condition: `Succeeded`, `Ready`, `Reconciling` or `Stalled`."""

    type: str = Field(default=CONDITION_SUCCEEDED, description="Condition type.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="Machine-readable reason (a Reason).")
    message: str | None = Field(default=None, description="Human-readable explanation.")
    last_transition_time: str | None = Field(
        default=None,
        alias="lastTransitionTime",
        description="When status last changed (RFC 3339).",
    )
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="Generation the condition is for."
    )


class LogsStatus(StatusModel):
    """Where the logs are, and their last lines captured before the pod went away."""

    namespace: str | None = Field(default=None, description="Namespace of the pod.")
    pod: str | None = Field(default=None, description="Name of the pod.")
    container: str | None = Field(default=None, description="Container the tail comes from.")
    command: str | None = Field(default=None, description="kubectl command that shows the logs.")
    tail: str | None = Field(default=None, description="Last lines of the log, bounded.")
    tail_lines: int | None = Field(
        default=None, alias="tailLines", description="Number of lines in tail."
    )
    truncated: bool | None = Field(
        default=None, description="True when the log had more lines than the tail keeps."
    )
    complete: bool | None = Field(
        default=None,
        description="True when `tail` is the whole and final log of every logged container:"
        " each had stopped when it was read, and none was cut. A reader that set"
        " `taskrun.dev/logs-from-status` then prints the tail instead of reading the pod, and"
        " the pod is not held for it.",
    )


class WarningEvent(StatusModel):
    """A recent Warning event of the pod."""

    reason: str | None = Field(default=None, description="Event reason.")
    message: str | None = Field(default=None, description="Event message.")
    count: int | None = Field(default=None, description="How many times it happened.")
    last_timestamp: str | None = Field(
        default=None, alias="lastTimestamp", description="When it last happened (RFC 3339)."
    )


class AttemptRecord(StatusModel):
    """The outcome of one attempt (one pod)."""

    attempt: int = Field(ge=1, description="Attempt number, from 1.")
    pod_name: str | None = Field(default=None, alias="podName", description="Pod of the attempt.")
    phase: Phase | None = Field(default=None, description="How the attempt ended.")
    reason: str | None = Field(default=None, description="Reason the attempt ended.")
    message: str | None = Field(default=None, description="Why, for humans.")
    exit_code: int | None = Field(
        default=None, alias="exitCode", description="Exit code of the base container."
    )
    start_time: str | None = Field(
        default=None, alias="startTime", description="When the attempt started (RFC 3339)."
    )
    completion_time: str | None = Field(
        default=None, alias="completionTime", description="When the attempt ended (RFC 3339)."
    )


class TaskRunStatus(StatusModel):
    """Observed state of a TaskRun; recomputable from the TaskRun and its pod."""

    phase: Phase | None = Field(
        default=None, description="Pending, Running, Succeeded, Failed, Skipped or Cancelled."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="`Succeeded` (for kubectl wait), `Ready` (its mirror), and kstatus's"
        " `Reconciling` (while the run goes on) and `Stalled` (ended Failed or Cancelled).",
    )
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="Generation last acted upon."
    )
    pod_name: str | None = Field(
        default=None, alias="podName", description="Pod of the current attempt."
    )
    attempts: int | None = Field(default=None, ge=0, description="Attempts started so far.")
    start_time: str | None = Field(
        default=None, alias="startTime", description="When the first attempt started (RFC 3339)."
    )
    completion_time: str | None = Field(
        default=None, alias="completionTime", description="When the run finished (RFC 3339)."
    )
    duration: str | None = Field(
        default=None,
        description='Run time from startTime to completionTime, e.g. "1m3s" (printer column).',
    )
    exit_code: int | None = Field(
        default=None, alias="exitCode", description="Exit code of the base container."
    )
    reason: str | None = Field(default=None, description="Machine-readable reason (a Reason).")
    message: str | None = Field(default=None, description="Human-readable explanation.")
    result: str | None = Field(
        default=None, description="Raw bytes of /airflow/xcom/return.json (UTF-8 JSON text)."
    )
    result_size: int | None = Field(
        default=None, alias="resultSize", ge=0, description="Size of result in bytes."
    )
    logs: LogsStatus | None = Field(default=None, description="Logs pointer and tail.")
    warnings: list[WarningEvent] | None = Field(
        default=None,
        max_length=MAX_WARNINGS,
        description=(
            "Recent Warning events of the pod, read when an attempt fails or a container restarted."
        ),
    )
    history: list[AttemptRecord] | None = Field(
        default=None,
        max_length=MAX_RETRIES + 1,
        description="One record per finished attempt (spec.retries + 1 at most).",
    )

    def condition(self, type_: str = CONDITION_SUCCEEDED) -> Condition | None:
        """The condition of that type, if any."""
        return next((c for c in self.conditions or [] if c.type == type_), None)
