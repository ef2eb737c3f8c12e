"""TaskRunOperator: a drop-in for Airflow's KubernetesPodOperator that runs the pod as a TaskRun."""

from __future__ import annotations

from typing import Any

__all__ = ["TaskRunOperator", "TaskRunTrigger"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the pure mapping module does not pull in the operator's
    # Airflow machinery (and DAG files importing the operator pay for it only once).
    if name == "TaskRunOperator":
        from taskrun.airflow.operator import TaskRunOperator

        return TaskRunOperator
    if name == "TaskRunTrigger":
        from taskrun.airflow.trigger import TaskRunTrigger

        return TaskRunTrigger
    raise AttributeError(name)
