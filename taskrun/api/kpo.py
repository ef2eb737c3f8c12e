"""KubernetesPodOperator's arguments and where each goes in a TaskRun.

Every argument of KPO's constructor (apache-airflow-providers-cncf-kubernetes 10.25) is
in exactly one of these tables: a spec field, the operator's own handling, accepted and
ignored, or refused. tests/airflow/test_kpo_arguments.py fails when the installed KPO has
an argument that is in none of them.
"""

from __future__ import annotations

from taskrun.api.reasons import OnKillAction as OnKillAction  # the operator argument it serves
from taskrun.api.spec import TaskRunSpec, kpo_arguments

# KPO argument -> the TaskRun spec field (wire name) its value lands in. Made from each
# field's own note (``json_schema_extra=_kpo(...)`` in spec.py), so a new field is mapped
# where it is declared.
KPO_SPEC_FIELDS: dict[str, str] = {
    argument: info.alias or name
    for name, info in TaskRunSpec.model_fields.items()
    for argument in kpo_arguments(info)
}

# Arguments TaskRunOperator itself acts on (connection, TaskRun metadata, the task log).
KPO_OPERATOR_ARGUMENTS: dict[str, str] = {
    "kubernetes_conn_id": "the connection (KubernetesHook)",
    "in_cluster": "the connection (KubernetesHook)",
    "cluster_context": "the connection (KubernetesHook)",
    "config_file": "the connection (KubernetesHook); its content travels to the trigger",
    "namespace": "metadata.namespace of the TaskRun, resolved as KPO resolves the pod's",
    "name": "the readable prefix of the TaskRun name",
    "deferrable": "TaskRunTrigger",
    "on_kill_action": "cancel (spec.cancel) or delete the TaskRun when the task is killed",
    "init_container_logs": "init containers' logs printed once the run ended",
    "container_name_log_prefix_enabled": "the task log's line format",
    "log_formatter": "the task log's line format",
    "log_pod_spec_on_failure": "logs the TaskRun spec on failure",
}

# Accepted for compatibility and without effect: the TaskRun does it another way.
KPO_IGNORED_ARGUMENTS: dict[str, str] = {
    "random_name_suffix": "the TaskRun name is derived from the task instance",
    "reattach_on_restart": "a restarted worker always reattaches to its own TaskRun",
    "durable": "a restarted worker always reattaches to its own TaskRun",
    "startup_check_interval_seconds": "nothing polls: the TaskRun is watched",
    "base_container_status_polling_interval": "nothing polls: the TaskRun is watched",
    "poll_interval": "nothing polls: the TaskRun is watched",
    "logging_interval": "the deferred task prints the whole log once, on resume",
    "trigger_kwargs": "they configure KPO's trigger (a warning is logged)",
    "xcom_sidecar_container_security_context": "a controller flag, not per task (a warning)",
    "log_events_on_startup": "a failed attempt's pod events are in status.warnings",
}

# Refused with a ValueError: accepting them would silently drop user code.
KPO_REFUSED_ARGUMENTS: dict[str, str] = {
    "callbacks": "they receive KPO's pod client and pod objects, which do not exist here",
    "progress_callback": "they receive KPO's pod client and pod objects, which do not exist here",
}
