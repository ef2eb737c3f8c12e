"""Table-driven tests of the KPO kwargs -> TaskRun mapping and of the TaskRun name."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("airflow.providers.cncf.kubernetes")

import yaml
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client import models as k8s

from taskrun.airflow import mapping
from taskrun.api import ANNOTATION_HOLD_POD, TaskRunSpec, spec_hash, validate_spec

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
BASE = ("dag", "task", "manual__2026-11-24T00:00:00+00:00", -1, 1)


# --- TaskRun names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed", "value"),
    [(0, "other_dag"), (1, "other_task"), (2, "manual__other"), (3, 0), (4, 2)],
    ids=["dag_id", "task_id", "run_id", "map_index", "try_number"],
)
def test_name_changes_with_each_identity_part(changed: int, value: Any) -> None:
    other = list(BASE)
    other[changed] = value
    assert mapping.taskrun_name(*BASE) != mapping.taskrun_name(*other)


def test_name_is_stable_across_calls_and_unmapped_forms() -> None:
    # A restarted worker must compute the very same name; None and -1 both mean "not mapped".
    assert mapping.taskrun_name(*BASE) == mapping.taskrun_name(*BASE)
    assert mapping.taskrun_name("dag", "task", "r", None, 1) == mapping.taskrun_name(
        "dag", "task", "r", -1, 1
    )


@pytest.mark.parametrize(
    ("task_id", "prefix", "head"),
    [
        ("extract", None, "extract"),
        ("Extract_Data.v2", None, "extract-data-v2"),
        ("t", "My.Pod_name", "my-pod-name"),
        ("t", "__--weird--__", "weird"),
        ("x" * 100, None, "x" * 49),
        ("___", None, ""),
    ],
)
def test_name_head(task_id: str, prefix: str | None, head: str) -> None:
    name = mapping.taskrun_name("d", task_id, "r", -1, 1, prefix)
    assert DNS_LABEL.match(name)
    assert len(name) <= mapping.MAX_TASKRUN_NAME_LEN
    digest = name.rsplit("-", 1)[-1] if head else name
    assert len(digest) == 10
    assert name == (f"{head}-{digest}" if head else digest)


@given(
    dag_id=st.text(min_size=1, max_size=250),
    task_id=st.text(min_size=1, max_size=250),
    run_id=st.text(max_size=250),
    map_index=st.one_of(st.none(), st.integers(-1, 10_000)),
    try_number=st.integers(0, 1000),
    prefix=st.one_of(st.none(), st.text(max_size=300)),
)
def test_name_is_always_a_short_dns_label(
    dag_id: str, task_id: str, run_id: str, map_index: int | None, try_number: int, prefix: Any
) -> None:
    name = mapping.taskrun_name(dag_id, task_id, run_id, map_index, try_number, prefix)
    assert DNS_LABEL.match(name), name
    assert len(name) <= mapping.MAX_TASKRUN_NAME_LEN


# --- task-instance labels: KPO's own function is the oracle -----------------------------------


@pytest.mark.parametrize(
    ("dag_id", "task_id", "run_id", "try_number", "map_index"),
    [
        ("etl", "load", "manual__2026-11-24T00:00:00+00:00", 1, -1),
        ("etl", "load", "scheduled__2026-11-24", 3, 0),
        ("Team Data::nightly", "load/all", "r" * 100, 12, 7),
        ("-edge-", "_t_", "..run..", 1, None),
        ("d", "t", "", 1, -1),
    ],
)
def test_ti_labels_match_kpo(
    dag_id: str, task_id: str, run_id: str, try_number: int, map_index: int | None
) -> None:
    ti = types.SimpleNamespace(
        dag_id=dag_id, task_id=task_id, try_number=try_number, map_index=map_index
    )
    expected = KubernetesPodOperator._get_ti_pod_labels(
        {"ti": ti, "run_id": run_id, "dag": types.SimpleNamespace()}
    )
    expected.update(airflow_version="3.3.2", airflow_kpo_in_cluster="True")
    actual = mapping.ti_labels(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        try_number=try_number,
        map_index=map_index,
        airflow_version="3.3.2",
        in_cluster=True,
    )
    assert actual == expected


def test_airflow_version_label_replaces_plus() -> None:
    labels = mapping.ti_labels(
        dag_id="d",
        task_id="t",
        run_id="r",
        try_number=1,
        map_index=None,
        airflow_version="3.3.2+astro.1",
        in_cluster=None,
    )
    assert labels["airflow_version"] == "3.3.2-astro.1"
    assert "airflow_kpo_in_cluster" not in labels


# --- small converters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ({}, []),
        ({"B": "2", "A": "1"}, [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]),
        ([k8s.V1EnvVar(name="X", value="1")], [{"name": "X", "value": "1"}]),
        ([{"name": "Y", "value": "2"}], [{"name": "Y", "value": "2"}]),
    ],
)
def test_env_list(value: Any, expected: list[dict[str, Any]]) -> None:
    assert mapping.env_list(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("a", [{"name": "a"}]),
        ("a,b", [{"name": "a"}, {"name": "b"}]),
        ("a, b", [{"name": "a"}, {"name": " b"}]),
        ([k8s.V1LocalObjectReference(name="r")], [{"name": "r"}]),
    ],
)
def test_image_pull_secrets(value: Any, expected: list[dict[str, str]]) -> None:
    assert mapping.image_pull_secrets(value) == expected


def test_secret_mounts() -> None:
    secrets = [
        Secret("env", "db_pass", "db", "password"),
        Secret("env", None, "all"),
        Secret("volume", "/etc/tls", "tls", items=[k8s.V1KeyToPath(key="crt", path="tls.crt")]),
    ]
    assert mapping.secret_mounts(secrets) == [
        {"deployType": "env", "secret": "db", "deployTarget": "DB_PASS", "key": "password"},
        {"deployType": "env", "secret": "all"},
        {
            "deployType": "volume",
            "secret": "tls",
            "deployTarget": "/etc/tls",
            "items": [{"key": "crt", "path": "tls.crt"}],
        },
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        (0, [0]),
        (99, [99]),
        ([100, 99, 100], [99, 100]),
        ((1,), [1]),
        (range(3), [0, 1, 2]),
    ],
)
def test_skip_exit_codes(value: Any, expected: list[int]) -> None:
    assert mapping.skip_exit_codes(value) == expected


def test_skip_exit_codes_refuses_uniterable_container() -> None:
    class Odd:
        def __contains__(self, code: object) -> bool:
            return isinstance(code, int) and code % 2 == 1

    with pytest.raises(TypeError, match="skip_on_exit_code"):
        mapping.skip_exit_codes(Odd())


@pytest.mark.parametrize(
    ("action", "is_delete", "expected"),
    [
        (None, None, "delete_pod"),
        ("keep_pod", None, "keep_pod"),
        ("delete_succeeded_pod", None, "delete_succeeded_pod"),
        ("delete_succeeded_pod", True, "delete_pod"),
        ("delete_pod", False, "keep_pod"),
    ],
)
def test_on_finish_action(action: str | None, is_delete: bool | None, expected: str) -> None:
    assert mapping.on_finish_action(action, is_delete) == expected


def test_on_finish_action_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="on_finish_action"):
        mapping.on_finish_action("delete_everything", None)


TEMPLATE = {
    "metadata": {"labels": {"a": "1"}},
    "spec": {"containers": [{"name": "main", "image": "t:1"}, {"name": "side", "image": "s:1"}]},
}


@pytest.mark.parametrize(
    ("value", "template", "expected"),
    [
        (None, None, ["base"]),
        (True, None, ["base"]),
        (True, TEMPLATE, ["base", "side"]),
        ("side", TEMPLATE, ["side"]),
        (["base", "side"], TEMPLATE, ["base", "side"]),
    ],
)
def test_container_logs(value: Any, template: Any, expected: list[str]) -> None:
    assert mapping.container_logs(value, "base", template) == expected


# --- pod templates -----------------------------------------------------------------------------


def test_template_file_wins_over_dict(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"spec": {"containers": [{"name": "f", "image": "file:1"}]}}))
    template = mapping.pod_template(str(path), TEMPLATE, None)
    assert template == {"spec": {"containers": [{"name": "f", "image": "file:1"}]}}


def test_full_pod_spec_wins_over_template() -> None:
    full = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(labels={"b": "2"}),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base", image="full:2")]),
    )
    template = mapping.pod_template(None, TEMPLATE, full)
    assert template is not None
    assert template["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert template["spec"]["containers"] == [
        {"name": "base", "image": "full:2"},
        {"name": "side", "image": "s:1"},
    ]


def test_full_pod_spec_alone_and_as_dict() -> None:
    as_dict = {"spec": {"containers": [{"name": "base", "image": "x:1"}], "hostNetwork": True}}
    assert mapping.pod_template(None, None, as_dict) == as_dict
    assert mapping.pod_template(None, None, None) is None


def test_missing_template_file_is_like_kpo_no_template(tmp_path: Path) -> None:
    assert mapping.pod_template(str(tmp_path / "missing.yaml"), None, None) is None


# --- whole specs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"image": "i"}, {"image": "i"}),
        (
            {"image": "i", "hostnetwork": False, "startup_timeout_seconds": 120, "get_logs": True},
            {"image": "i"},
        ),
        (
            {"image": "i", "startup_timeout_seconds": 30, "schedule_timeout_seconds": 30},
            {"image": "i", "startupTimeoutSeconds": 30},
        ),
        (
            {"image": "i", "schedule_timeout_seconds": 600},
            {"image": "i", "scheduleTimeoutSeconds": 600},
        ),
        (
            {"image": "i", "automount_service_account_token": False},
            {"image": "i", "automountServiceAccountToken": False},
        ),
        (
            {"image": "i", "termination_grace_period": 0},
            {"image": "i", "terminationGracePeriod": 0},
        ),
        ({"image": "i", "labels": {"a": None}}, {"image": "i", "labels": {"a": ""}}),
        (
            {"image": "i", "is_delete_operator_pod": False, "skip_on_exit_code": 3},
            {"image": "i", "onFinishAction": "keep_pod", "skipOnExitCode": [3]},
        ),
        (
            {"pod_template_dict": TEMPLATE},
            {"image": "t:1", "podTemplate": TEMPLATE},
        ),
        (
            {"image": "i", "base_container_name": "job", "container_logs": True},
            {"image": "i", "baseContainerName": "job"},
        ),
        (
            {"image": "i", "do_xcom_push": True, "get_logs": False, "log_events_on_failure": True},
            {"image": "i", "doXcomPush": True, "getLogs": False, "logEventsOnFailure": True},
        ),
    ],
)
def test_build_spec(kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = mapping.build_spec(kwargs)
    assert spec == expected
    validate_spec(spec)


def test_build_spec_task_instance_labels_override_user_labels() -> None:
    spec = mapping.build_spec(
        {"image": "i", "labels": {"dag_id": "mine", "x": "1"}}, labels={"dag_id": "d"}
    )
    assert spec["labels"] == {"dag_id": "d", "x": "1"}


def test_build_taskrun_object() -> None:
    body = mapping.build_taskrun(
        {"image": "i"},
        name="n-1",
        namespace="ns",
        metadata_labels={"dag_id": "d"},
        annotations={ANNOTATION_HOLD_POD: "true"},
    )
    assert body == {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {
            "name": "n-1",
            "namespace": "ns",
            "labels": {"dag_id": "d"},
            "annotations": {
                "taskrun.dev/hold-pod-until-ack": "true",
                "taskrun.dev/spec-hash": spec_hash({"image": "i"}),
            },
        },
        "spec": {"image": "i"},
    }


@pytest.mark.parametrize(
    ("value", "spec", "expected"),
    [
        (None, {}, []),
        (False, {}, []),
        ("setup", {}, ["setup"]),
        (["a", "b"], {}, ["a", "b"]),
        (
            True,
            {
                "podTemplate": {
                    "spec": {
                        "containers": [{"name": "base"}],
                        "initContainers": [{"name": "t"}, {"name": "both"}],
                    }
                },
                "initContainers": [{"name": "both", "image": "b"}, {"name": "op", "image": "o"}],
            },
            ["t", "both", "op"],
        ),
    ],
)
def test_init_container_names(value: Any, spec: dict[str, Any], expected: list[str]) -> None:
    model = TaskRunSpec.model_validate({"image": "i", **spec})
    assert mapping.init_container_names(value, model) == expected


def test_migration_guide_names_every_kpo_parameter() -> None:
    import inspect

    guide = (Path(__file__).resolve().parents[2] / "docs" / "migration-from-kpo.md").read_text()
    params = inspect.signature(KubernetesPodOperator.__init__).parameters
    missing = [n for n in params if n not in ("self", "kwargs") and f"`{n}`" not in guide]
    assert not missing


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": "i", "startup_timeout_seconds": 0}, "spec.startupTimeoutSeconds"),
        ({"image": "i", "dnspolicy": "Sometimes"}, "spec.dnsPolicy"),
        ({"image": "i", "skip_on_exit_code": 300}, "spec.skipOnExitCode[0]"),
        ({"cmds": ["true"]}, "spec.image"),
    ],
)
def test_a_spec_the_model_refuses_fails_on_the_worker(kwargs: dict[str, Any], field: str) -> None:
    # Built through TaskRunSpec: refused before any request, naming the field, as the
    # controller would (InvalidSpec) had the TaskRun been created.
    with pytest.raises(ValueError, match=re.escape(field)):
        mapping.build_spec(kwargs)


def test_spec_hash_ignores_defaults_and_cancel_but_not_content() -> None:
    spec = mapping.build_spec({"image": "i", "cmds": ["a"]})
    assert spec_hash(spec) == spec_hash({**spec, "getLogs": True, "cancel": True})
    assert spec_hash(spec) != spec_hash({**spec, "cmds": ["b"]})


def test_only_our_own_taskrun_is_ours() -> None:
    ours = mapping.build_taskrun(
        {"image": "i"}, name="n", namespace="ns", metadata_labels={"dag_id": "d"}
    )
    stored = {**ours, "spec": {**ours["spec"], "cancel": True}, "status": {"phase": "Running"}}
    assert mapping.foreign_because(stored, ours) is None
    other = {**ours, "metadata": {**ours["metadata"], "labels": {"dag_id": "e"}}}
    assert "label dag_id='e'" in str(mapping.foreign_because(other, ours))
    unparseable = {**ours, "spec": {"image": 5}}
    assert "does not match" in str(mapping.foreign_because(unparseable, ours))
