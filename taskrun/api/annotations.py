"""Annotations and labels that clients of the TaskRun API set or read (one source of names)."""

from __future__ import annotations

# The logs hand-over (docs/architecture.md): a reader that wants the whole pod log asks the
# controller to keep the pod until it acknowledges having read it.
HOLD_POD_ANNOTATION = "taskrun.dev/hold-pod-until-ack"
LOGS_ACKED_ANNOTATION = "taskrun.dev/logs-acked"

# Labels the Airflow operator puts on the TaskRun (KPO's task-instance labels, sanitised).
AIRFLOW_DAG_LABEL = "dag_id"
AIRFLOW_TASK_LABEL = "task_id"
AIRFLOW_RUN_LABEL = "run_id"
AIRFLOW_TRY_LABEL = "try_number"
