"""docs/api-reference.md is generated from the models and the CRD."""

from __future__ import annotations

import sys
from pathlib import Path

from taskrun.api import TaskRunSpec

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))

import gen_api_docs  # noqa: E402


def test_api_reference_is_fresh() -> None:
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == gen_api_docs.generate(), "stale: run python tools/gen_api_docs.py"


def test_every_spec_field_is_documented_with_its_kpo_parameter() -> None:
    text = gen_api_docs.generate()
    for name, info in TaskRunSpec.model_fields.items():
        assert f"| `{info.alias or name}` |" in text
        assert info.description, name
        assert "KPO" in info.description or "Airflow" in info.description, name
        assert isinstance(info.json_schema_extra, dict) and info.json_schema_extra["kpo"]


def test_documented_sizes_are_measured() -> None:
    yaml_size, json_size = gen_api_docs.sizes()
    assert f"{yaml_size:,} bytes of YAML" in gen_api_docs.generate()
    assert json_size < yaml_size < 200 * 1024


# The parameters of KubernetesPodOperator 10.25 (its constructor's signature).
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
    "startup_timeout_seconds",
    "startup_check_interval_seconds",
    "get_logs",
    "base_container_name",
    "container_logs",
    "image_pull_policy",
    "annotations",
    "container_resources",
    "affinity",
    "config_file",
    "node_selector",
    "image_pull_secrets",
    "service_account_name",
    "hostnetwork",
    "host_aliases",
    "tolerations",
    "security_context",
    "container_security_context",
    "dnspolicy",
    "dns_config",
    "hostname",
    "subdomain",
    "schedulername",
    "full_pod_spec",
    "init_containers",
    "log_events_on_failure",
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
    "is_delete_operator_pod",
    "termination_message_policy",
    "active_deadline_seconds",
    "callbacks",
    "progress_callback",
    "logging_interval",
]


def test_every_kpo_parameter_has_a_home() -> None:
    in_spec = set()
    for info in TaskRunSpec.model_fields.values():
        assert isinstance(info.json_schema_extra, dict)
        in_spec |= set(str(info.json_schema_extra["kpo"]).split(", "))
    operator_side = {p for params in gen_api_docs.OPERATOR_SIDE for p in params.split(", ")}
    homeless = [p for p in KPO_PARAMETERS if p not in in_spec | operator_side]
    assert homeless == []
