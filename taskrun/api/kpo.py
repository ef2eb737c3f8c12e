"""KubernetesPodOperator's arguments and where each goes in a TaskRun.

Every argument of KPO's constructor (apache-airflow-providers-cncf-kubernetes 10.25) is
in exactly one of these tables: a spec field, the operator's own handling, accepted and
ignored, or refused. tests/airflow/test_kpo_arguments.py fails when the installed KPO has
an argument that is in none of them, and tests/unit/api checks each spec field's ``kpo``
note (the API reference's column) against KPO_SPEC_FIELDS.
"""

from __future__ import annotations

# KPO argument -> the TaskRun spec field (wire name) its value lands in.
KPO_SPEC_FIELDS: dict[str, str] = {
    "image": "image",
    "cmds": "cmds",
    "arguments": "arguments",
    "ports": "ports",
    "volume_mounts": "volumeMounts",
    "volumes": "volumes",
    "env_vars": "envVars",
    "env_from": "envFrom",
    "secrets": "secrets",
    "labels": "labels",
    "startup_timeout_seconds": "startupTimeoutSeconds",
    "schedule_timeout_seconds": "scheduleTimeoutSeconds",
    "get_logs": "getLogs",
    "base_container_name": "baseContainerName",
    "container_logs": "containerLogs",
    "image_pull_policy": "imagePullPolicy",
    "annotations": "annotations",
    "container_resources": "containerResources",
    "affinity": "affinity",
    "runtime_class_name": "runtimeClassName",
    "node_selector": "nodeSelector",
    "image_pull_secrets": "imagePullSecrets",
    "service_account_name": "serviceAccountName",
    "automount_service_account_token": "automountServiceAccountToken",
    "hostnetwork": "hostNetwork",
    "host_aliases": "hostAliases",
    "tolerations": "tolerations",
    "security_context": "securityContext",
    "container_security_context": "containerSecurityContext",
    "dnspolicy": "dnsPolicy",
    "dns_config": "dnsConfig",
    "hostname": "hostname",
    "subdomain": "subdomain",
    "schedulername": "schedulerName",
    "full_pod_spec": "podTemplate",
    "init_containers": "initContainers",
    "log_events_on_failure": "logEventsOnFailure",
    "do_xcom_push": "doXcomPush",
    "pod_template_file": "podTemplate",
    "pod_template_dict": "podTemplate",
    "priority_class_name": "priorityClassName",
    "pod_runtime_info_envs": "podRuntimeInfoEnvs",
    "termination_grace_period": "terminationGracePeriod",
    "configmaps": "configmaps",
    "skip_on_exit_code": "skipOnExitCode",
    "on_finish_action": "onFinishAction",
    "is_delete_operator_pod": "onFinishAction",
    "termination_message_policy": "terminationMessagePolicy",
    "active_deadline_seconds": "activeDeadlineSeconds",
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
    "log_events_on_startup": "pending-pod events are in status.warnings",
}

# Refused with a ValueError: accepting them would silently drop user code.
KPO_REFUSED_ARGUMENTS: dict[str, str] = {
    "callbacks": "they receive KPO's pod client and pod objects, which do not exist here",
    "progress_callback": "they receive KPO's pod client and pod objects, which do not exist here",
}
