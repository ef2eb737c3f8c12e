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
