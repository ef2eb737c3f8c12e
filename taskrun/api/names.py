"""Names and defaults the controller, the Airflow operator, the CRD and the docs share.

One copy of each: import it from ``taskrun.api`` rather than writing the string again.
"""

from __future__ import annotations

# The API: taskrun.dev/v1alpha1, kind TaskRun.
GROUP = "taskrun.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TaskRun"
PLURAL = "taskruns"
SINGULAR = "taskrun"
SHORT_NAMES = ["trun"]
CRD_NAME = f"{PLURAL}.{GROUP}"

# Containers and the result hand-over (KPO's names).
DEFAULT_BASE_CONTAINER_NAME = "base"
XCOM_SIDECAR_NAME = "airflow-xcom-sidecar"
XCOM_VOLUME_NAME = "xcom"
XCOM_MOUNT_PATH = "/airflow/xcom"
XCOM_RESULT_PATH = f"{XCOM_MOUNT_PATH}/return.json"

# On the pods the controller creates.
LABEL_NAME = f"{GROUP}/name"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "taskrun-controller"
ANNOTATION_UID = f"{GROUP}/uid"

# On TaskRuns. The log hand-over (docs/architecture.md, "Logs hand-over"): a reader that
# wants the whole log asks the controller to hold the finished pod, then acknowledges.
ANNOTATION_HOLD_POD = f"{GROUP}/hold-pod-until-ack"
ANNOTATION_LOGS_ACKED = f"{GROUP}/logs-acked"
# Set beside the hold by a reader that prints exactly status.logs.tail's containers: when
# status.logs.complete says the tail is their whole log, it reads the tail instead of the
# pod and does not ack, and the controller deletes the pod without waiting
# (taskrun.api.handover). A controller that does not know it holds the pod as before, and
# writes no ``complete``, so the reader reads the pod and acks as before.
ANNOTATION_LOGS_FROM_STATUS = f"{GROUP}/logs-from-status"
# Written by TaskRunOperator: the hash of the spec it created (taskrun.api.spec_hash), so a
# restarted worker reattaches only to a TaskRun it made, never to another of the same name.
ANNOTATION_SPEC_HASH = f"{GROUP}/spec-hash"
# What each annotation of a TaskRun asks for (docs/api-reference.md is generated from this).
TASKRUN_ANNOTATIONS = {
    ANNOTATION_HOLD_POD: '`"true"`: a log reader wants the whole log. The controller keeps a'
    " run's finished pod (one that stopped on its own) until the reader sets"
    f" `{ANNOTATION_LOGS_ACKED}`, for at most `--max-hold-seconds` after the run's end,"
    " then applies `onFinishAction`. TaskRunOperator (with `get_logs`) and `kubectl taskrun"
    " run` set it.",
    ANNOTATION_LOGS_ACKED: '`"true"`: the log reader has read the log; a held pod goes.',
    ANNOTATION_LOGS_FROM_STATUS: '`"true"`, beside the hold: the reader prints exactly the'
    " containers `status.logs` covers (`spec.containerLogs`, or the base container), so"
    " when `status.logs.complete` is true it prints `status.logs.tail` and sends no ack,"
    " and the controller does not hold the pod. TaskRunOperator sets it when it shows one"
    " container and no init container logs; `kubectl taskrun run` (and `rerun --follow`)"
    " when the spec logs the base container only. A controller older than this annotation"
    " writes no `complete`: the pod is held, read and acknowledged as before.",
    ANNOTATION_SPEC_HASH: "Written by TaskRunOperator: the hash of the spec it created, so"
    " a restarted worker reattaches only to a TaskRun it made.",
}
# The task-instance labels TaskRunOperator puts on the TaskRun itself (KPO's label names).
AIRFLOW_DAG_LABEL = "dag_id"
AIRFLOW_TASK_LABEL = "task_id"
AIRFLOW_RUN_LABEL = "run_id"
AIRFLOW_TRY_LABEL = "try_number"
AIRFLOW_MAP_INDEX_LABEL = "map_index"
AIRFLOW_IDENTITY_LABELS = (
    AIRFLOW_DAG_LABEL,
    AIRFLOW_TASK_LABEL,
    AIRFLOW_RUN_LABEL,
    AIRFLOW_TRY_LABEL,
    AIRFLOW_MAP_INDEX_LABEL,
)

# Defaults of spec fields and of the controller's flags.
DEFAULT_STARTUP_TIMEOUT_SECONDS = 120
DEFAULT_LOG_TAIL_LINES = 100
DEFAULT_LOG_TAIL_BYTES = 16 * 1024
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
DEFAULT_MAX_HOLD_SECONDS = 600.0
# The largest result the native sidecar hands over in its termination message: the kubelet
# keeps 4096 bytes of a message and "inline:" takes 7.
INLINE_RESULT_MAX_BYTES = 4000
# How the pod builder tells the native sidecar its real inline budget (fewer bytes when the
# pod has many containers: the kubelet shares 12 KiB of messages among them).
XCOM_INLINE_MAX_ENV = "TASKRUN_XCOM_INLINE_MAX"
