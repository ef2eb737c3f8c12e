"""taskrun.api's map of KubernetesPodOperator arguments (made from the spec fields' notes), and
its shared names where a type must spell them out."""

from __future__ import annotations

import typing

import pytest

from taskrun.api import (
    API_VERSION,
    KIND,
    KPO_IGNORED_ARGUMENTS,
    KPO_OPERATOR_ARGUMENTS,
    KPO_REFUSED_ARGUMENTS,
    KPO_SPEC_FIELDS,
    OnFinishAction,
    OnKillAction,
    TaskRun,
    TaskRunSpec,
)

# The keyword arguments of KubernetesPodOperator 10.25 (its constructor's signature), so the
# suite without Airflow checks the map too; tests/airflow checks the installed provider's.
KPO_PARAMETERS = [
    "kubernetes_conn_id",
    "namespace",
    "image",
    "name",
    "random_name_suffix",
    "cmds",
    "arguments",
    "ports",
    "volume_mounts",
    "volumes",
    "env_vars",
    "env_from",
    "secrets",
    "in_cluster",
    "cluster_context",
    "labels",
    "reattach_on_restart",
    "durable",
    "startup_timeout_seconds",
    "startup_check_interval_seconds",
    "schedule_timeout_seconds",
    "get_logs",
    "base_container_name",
    "base_container_status_polling_interval",
    "init_container_logs",
    "container_logs",
    "image_pull_policy",
    "annotations",
    "container_resources",
    "affinity",
    "config_file",
    "runtime_class_name",
    "node_selector",
    "image_pull_secrets",
    "service_account_name",
    "automount_service_account_token",
    "hostnetwork",
    "host_aliases",
    "tolerations",
    "security_context",
    "container_security_context",
    "xcom_sidecar_container_security_context",
    "dnspolicy",
    "dns_config",
    "hostname",
    "subdomain",
    "schedulername",
    "full_pod_spec",
    "init_containers",
    "log_events_on_failure",
    "log_events_on_startup",
    "do_xcom_push",
    "pod_template_file",
    "pod_template_dict",
    "priority_class_name",
    "pod_runtime_info_envs",
    "termination_grace_period",
    "configmaps",
    "skip_on_exit_code",
    "deferrable",
    "poll_interval",
    "log_pod_spec_on_failure",
    "on_finish_action",
    "on_kill_action",
    "is_delete_operator_pod",
    "termination_message_policy",
    "active_deadline_seconds",
    "callbacks",
    "progress_callback",
    "logging_interval",
    "trigger_kwargs",
    "container_name_log_prefix_enabled",
    "log_formatter",
]


TABLES = [KPO_SPEC_FIELDS, KPO_OPERATOR_ARGUMENTS, KPO_IGNORED_ARGUMENTS, KPO_REFUSED_ARGUMENTS]


@pytest.mark.parametrize(
    ("argument", "field"),
    [
        ("image", "image"),
        ("env_vars", "envVars"),
        # KPO's spellings without underscores keep their Kubernetes field names.
        ("hostnetwork", "hostNetwork"),
        ("dnspolicy", "dnsPolicy"),
        ("schedulername", "schedulerName"),
        # Several arguments fill one field.
        ("pod_template_file", "podTemplate"),
        ("pod_template_dict", "podTemplate"),
        ("full_pod_spec", "podTemplate"),
        ("on_finish_action", "onFinishAction"),
        ("is_delete_operator_pod", "onFinishAction"),
        ("termination_grace_period", "terminationGracePeriod"),
    ],
)
def test_an_argument_lands_in_its_field(argument: str, field: str) -> None:
    assert KPO_SPEC_FIELDS[argument] == field


@pytest.mark.parametrize("field", ["retries", "retryBackoff", "cancel", "ttlSecondsAfterFinished"])
def test_a_field_no_kpo_argument_fills_is_not_mapped(field: str) -> None:
    assert field not in KPO_SPEC_FIELDS.values()


def test_every_mapped_field_is_a_spec_field() -> None:
    aliases = {info.alias or name for name, info in TaskRunSpec.model_fields.items()}
    assert set(KPO_SPEC_FIELDS.values()) <= aliases


def test_every_mapped_argument_is_a_kpo_argument() -> None:
    # A typo in a field's _kpo note would map an argument KPO does not have.
    assert sorted(set(KPO_SPEC_FIELDS) - set(KPO_PARAMETERS)) == []


def test_every_kpo_parameter_has_a_home() -> None:
    listed = {argument for table in TABLES for argument in table}
    assert [p for p in KPO_PARAMETERS if p not in listed] == []


def test_the_tables_do_not_overlap() -> None:
    seen: set[str] = set()
    for table in TABLES:
        assert not seen & set(table), seen & set(table)
        seen |= set(table)


@pytest.mark.parametrize(
    ("value", "deletes"),
    [("cancel", False), ("delete", True), ("delete_pod", True), ("keep_pod", False)],
)
def test_on_kill_actions(value: str, deletes: bool) -> None:
    assert OnKillAction.parse(value).deletes is deletes


def test_kpos_on_kill_actions_are_the_finish_actions_of_the_same_name() -> None:
    assert OnKillAction.DELETE_POD == OnFinishAction.DELETE_POD
    assert OnKillAction.KEEP_POD == OnFinishAction.KEEP_POD


def test_an_unknown_on_kill_action_names_the_argument_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"on_kill_action must be one of \('cancel'.* 'explode'"):
        OnKillAction.parse("explode")


def test_the_resources_literal_types_are_the_shared_names() -> None:
    fields = TaskRun.model_fields
    assert typing.get_args(fields["api_version"].annotation) == (API_VERSION,)
    assert typing.get_args(fields["kind"].annotation) == (KIND,)
    assert (fields["api_version"].default, fields["kind"].default) == (API_VERSION, KIND)
