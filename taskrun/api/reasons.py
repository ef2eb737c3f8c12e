"""Phases and reasons of a TaskRun: one name for one thing across status, events and metrics."""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self not in (Phase.PENDING, Phase.RUNNING)


# kstatus's standard conditions (sigs.k8s.io/cli-utils/pkg/kstatus), for Flux and kpt;
# CONDITION_SUCCEEDED, below, is kubectl wait's.
CONDITION_READY = "Ready"
CONDITION_RECONCILING = "Reconciling"
CONDITION_STALLED = "Stalled"


class Reason(StrEnum):
    POD_CREATED = "PodCreated"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    EXIT_CODE = "ExitCode"
    SKIPPED = "Skipped"
    STARTUP_TIMEOUT = "StartupTimeout"
    SCHEDULE_TIMEOUT = "ScheduleTimeout"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    OOM_KILLED = "OOMKilled"
    EVICTED = "Evicted"
    POD_DELETED = "PodDeleted"
    NODE_LOST = "NodeLost"
    CANCELLED = "Cancelled"
    INVALID_SPEC = "InvalidSpec"
    POLICY_DENIED = "PolicyDenied"
    RESULT_TOO_LARGE = "ResultTooLarge"
    RESULT_INVALID = "ResultInvalid"
    POD_NAME_CONFLICT = "PodNameConflict"
    RETRYING = "Retrying"
    # The API server refuses the pod for now (403: a missing service account, a quota; other
    # 4xx that can heal): shown while Pending, retried with backoff.
    FAILED_CREATE = "FailedCreate"
    # No pod could be created within startupTimeoutSeconds.
    CREATE_TIMEOUT = "CreateTimeout"
    # The status, as the API server encodes it, is over --max-status-bytes even with tails,
    # warnings and history cut, or the server refused the write as too large.
    STATUS_TOO_LARGE = "StatusTooLarge"


class OnFinishAction(StrEnum):
    """What happens to the pod when the run ends (KPO's on_finish_action)."""

    DELETE_POD = "delete_pod"
    DELETE_SUCCEEDED_POD = "delete_succeeded_pod"
    KEEP_POD = "keep_pod"


CONDITION_SUCCEEDED = "Succeeded"

FINISHED_PHASES = frozenset(phase for phase in Phase if phase.finished)
"""The terminal phases: the run is over, the controller changes nothing but the pod."""


class OnKillAction(StrEnum):
    """What TaskRunOperator and its trigger do to the TaskRun when the task is killed.

    KPO's ``on_kill_action`` takes ``delete_pod`` and ``keep_pod`` (the values of the
    ``onFinishAction`` field's type); a TaskRun adds ``cancel`` (the default) and ``delete``.
    """

    CANCEL = "cancel"  # spec.cancel: the controller stops the pod, the TaskRun ends Cancelled
    DELETE = "delete"  # delete the TaskRun; its pod goes with it
    DELETE_POD = OnFinishAction.DELETE_POD.value  # KPO's name for DELETE
    KEEP_POD = OnFinishAction.KEEP_POD.value  # leave the run alone

    @property
    def deletes(self) -> bool:
        return self in (OnKillAction.DELETE, OnKillAction.DELETE_POD)

    @classmethod
    def parse(cls, value: str) -> OnKillAction:
        """The action of an ``on_kill_action`` argument; ValueError naming the choices."""
        try:
            return cls(value)
        except ValueError:
            allowed = tuple(a.value for a in cls)
            raise ValueError(f"on_kill_action must be one of {allowed}, not {value!r}") from None
