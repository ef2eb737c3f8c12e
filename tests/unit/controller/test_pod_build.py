"""build_pod: one case per spec field, KPO's merge rules with podTemplate, SpecError."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controller.core.pod import SpecError, base_container_name, build_pod, secret_volume_name
from taskrun.api.spec import TaskRunSpec

META = {"name": "run", "namespace": "team-a", "uid": "0b6c-uid"}


def taskrun(**spec: Any) -> dict[str, Any]:
    return {"metadata": dict(META), "spec": {"image": "busybox:1.36", **spec}}


def base(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


def test_minimal_pod_is_kpos_pod_plus_ownership() -> None:
    pod = build_pod(taskrun(), 1)
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "run-1",
            "namespace": "team-a",
            "labels": {
                "taskrun.dev/name": "run",
                "taskrun.dev/attempt": "1",
                "app.kubernetes.io/managed-by": "taskrun-controller",
            },
            "annotations": {"taskrun.dev/uid": "0b6c-uid"},
            "ownerReferences": [
                {
                    "apiVersion": "taskrun.dev/v1alpha1",
                    "kind": "TaskRun",
                    "name": "run",
                    "uid": "0b6c-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "affinity": {},
            "nodeSelector": {},
            "tolerations": [],
            "initContainers": [],
            "imagePullSecrets": [],
            "securityContext": {},
            "volumes": [],
            "hostNetwork": False,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "base",
                    "image": "busybox:1.36",
                    "command": [],
                    "args": [],
                    "env": [],
                    "envFrom": [],
                    "ports": [],
                    "volumeMounts": [],
                    "terminationMessagePolicy": "File",
                }
            ],
        },
    }


def test_attempt_changes_name_and_label_only() -> None:
    one, two = build_pod(taskrun(), 1), build_pod(taskrun(), 2)
    assert two["metadata"]["name"] == "run-2"
    assert two["metadata"]["labels"]["taskrun.dev/attempt"] == "2"
    for pod in (one, two):
        del pod["metadata"]["name"], pod["metadata"]["labels"]["taskrun.dev/attempt"]
    assert one == two


ENV = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
RUNTIME_ENV = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
RESOURCES = {"limits": {"memory": "1Gi"}, "requests": {"cpu": "100m"}}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Exists"}]}]
        }
    }
}
TOLERATION = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
PORTS = [{"containerPort": 8080, "name": "http"}]
VOLUMES = [{"name": "data", "emptyDir": {}}]
MOUNTS = [{"name": "data", "mountPath": "/data"}]
INIT = [{"name": "init", "image": "busybox", "command": ["true"]}]
HOST_ALIASES = [{"ip": "10.0.0.1", "hostnames": ["db"]}]
DNS_CONFIG = {"nameservers": ["1.1.1.1"]}

# (spec fields, path into the pod, expected value). One row per field that shapes the pod.
FIELD_CASES: list[tuple[dict[str, Any], tuple[Any, ...], Any]] = [
    ({"image": "python:3.12"}, ("spec", "containers", 0, "image"), "python:3.12"),
    ({"cmds": ["python", "-c"]}, ("spec", "containers", 0, "command"), ["python", "-c"]),
    ({"arguments": ["print(1)"]}, ("spec", "containers", 0, "args"), ["print(1)"]),
    ({"envVars": ENV}, ("spec", "containers", 0, "env"), ENV),
    (
        {"envVars": ENV, "podRuntimeInfoEnvs": RUNTIME_ENV},
        ("spec", "containers", 0, "env"),
        ENV + RUNTIME_ENV,
    ),
    ({"podRuntimeInfoEnvs": RUNTIME_ENV}, ("spec", "containers", 0, "env"), RUNTIME_ENV),
    (
        {"envFrom": [{"secretRef": {"name": "s"}}]},
        ("spec", "containers", 0, "envFrom"),
        [{"secretRef": {"name": "s"}}],
    ),
    (
        {"envFrom": [{"secretRef": {"name": "s"}}], "configmaps": ["c1", "c2"]},
        ("spec", "containers", 0, "envFrom"),
        [
            {"secretRef": {"name": "s"}},
            {"configMapRef": {"name": "c1"}},
            {"configMapRef": {"name": "c2"}},
        ],
    ),
    ({"ports": PORTS}, ("spec", "containers", 0, "ports"), PORTS),
    ({"volumes": VOLUMES}, ("spec", "volumes"), VOLUMES),
    (
        {"volumes": VOLUMES, "volumeMounts": MOUNTS},
        ("spec", "containers", 0, "volumeMounts"),
        MOUNTS,
    ),
    ({"containerResources": RESOURCES}, ("spec", "containers", 0, "resources"), RESOURCES),
    ({"affinity": AFFINITY}, ("spec", "affinity"), AFFINITY),
    ({"nodeSelector": {"pool": "batch"}}, ("spec", "nodeSelector"), {"pool": "batch"}),
    ({"tolerations": TOLERATION}, ("spec", "tolerations"), TOLERATION),
    ({"securityContext": {"runAsUser": 1000}}, ("spec", "securityContext"), {"runAsUser": 1000}),
    (
        {"containerSecurityContext": {"readOnlyRootFilesystem": True}},
        ("spec", "containers", 0, "securityContext"),
        {"readOnlyRootFilesystem": True},
    ),
    ({"serviceAccountName": "runner"}, ("spec", "serviceAccountName"), "runner"),
    (
        {"automountServiceAccountToken": False},
        ("spec", "automountServiceAccountToken"),
        False,
    ),
    ({"hostNetwork": True}, ("spec", "hostNetwork"), True),
    ({"hostAliases": HOST_ALIASES}, ("spec", "hostAliases"), HOST_ALIASES),
    ({"dnsPolicy": "None", "dnsConfig": DNS_CONFIG}, ("spec", "dnsPolicy"), "None"),
    ({"dnsPolicy": "None", "dnsConfig": DNS_CONFIG}, ("spec", "dnsConfig"), DNS_CONFIG),
    ({"hostname": "worker"}, ("spec", "hostname"), "worker"),
    ({"subdomain": "jobs"}, ("spec", "subdomain"), "jobs"),
    ({"schedulerName": "volcano"}, ("spec", "schedulerName"), "volcano"),
    ({"priorityClassName": "high"}, ("spec", "priorityClassName"), "high"),
    ({"runtimeClassName": "gvisor"}, ("spec", "runtimeClassName"), "gvisor"),
    ({"initContainers": INIT}, ("spec", "initContainers"), INIT),
    ({"imagePullPolicy": "Always"}, ("spec", "containers", 0, "imagePullPolicy"), "Always"),
    (
        {"imagePullSecrets": [{"name": "a"}, {"name": "b"}]},
        ("spec", "imagePullSecrets"),
        [{"name": "a"}, {"name": "b"}],
    ),
    ({"labels": {"team": "data"}}, ("metadata", "labels", "team"), "data"),
    ({"labels": {"empty": None}}, ("metadata", "labels", "empty"), ""),
    ({"annotations": {"note": "x"}}, ("metadata", "annotations", "note"), "x"),
    ({"terminationGracePeriod": 5}, ("spec", "terminationGracePeriodSeconds"), 5),
    ({"activeDeadlineSeconds": 600}, ("spec", "activeDeadlineSeconds"), 600),
    (
        {"terminationMessagePolicy": "FallbackToLogsOnError"},
        ("spec", "containers", 0, "terminationMessagePolicy"),
        "FallbackToLogsOnError",
    ),
    ({"baseContainerName": "main"}, ("spec", "containers", 0, "name"), "main"),
]


def dig(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


@pytest.mark.parametrize(("fields", "path", "expected"), FIELD_CASES)
def test_spec_field_shapes_the_pod(fields: dict[str, Any], path: tuple[Any, ...], expected: Any):
    assert dig(build_pod(taskrun(**fields), 1), path) == expected


def test_build_pod_does_not_mutate_the_taskrun() -> None:
    tr = taskrun(
        envVars=ENV,
        volumes=VOLUMES,
        volumeMounts=MOUNTS,
        doXcomPush=True,
        secrets=[{"deployType": "volume", "deployTarget": "/s", "secret": "s"}],
        podTemplate={"spec": {"containers": [{"name": "x", "env": [{"name": "T"}]}]}},
    )
    before = copy.deepcopy(tr)
    build_pod(tr, 1)
    assert tr == before


def test_user_labels_cannot_detach_the_pod() -> None:
    pod = build_pod(taskrun(labels={"taskrun.dev/name": "other", "taskrun.dev/attempt": "9"}), 1)
    assert pod["metadata"]["labels"]["taskrun.dev/name"] == "run"
    assert pod["metadata"]["labels"]["taskrun.dev/attempt"] == "1"


# --- secrets ------------------------------------------------------------------------------


def test_secret_env_with_key_becomes_secret_key_ref_upper_cased() -> None:
    pod = build_pod(
        taskrun(
            envVars=ENV,
            secrets=[{"deployType": "env", "deployTarget": "db_pass", "secret": "db", "key": "pw"}],
        ),
        1,
    )
    assert base(pod)["env"] == [
        *ENV,
        {"name": "DB_PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    ]


def test_secret_env_without_key_becomes_env_from_after_configmaps() -> None:
    pod = build_pod(taskrun(configmaps=["cm"], secrets=[{"deployType": "env", "secret": "all"}]), 1)
    assert base(pod)["envFrom"] == [
        {"configMapRef": {"name": "cm"}},
        {"secretRef": {"name": "all"}},
    ]


def test_secret_volume_is_a_read_only_mount_with_a_stable_name() -> None:
    secret = {
        "deployType": "volume",
        "deployTarget": "/etc/creds",
        "secret": "creds",
        "items": [{"key": "token", "path": "t"}],
    }
    pod = build_pod(taskrun(volumes=VOLUMES, volumeMounts=MOUNTS, secrets=[secret]), 1)
    name = secret_volume_name(secret, 0)
    assert name.startswith("secretvol") and len(name) == len("secretvol") + 36
    assert pod["spec"]["volumes"] == [
        *VOLUMES,
        {"name": name, "secret": {"secretName": "creds", "items": secret["items"]}},
    ]
    assert base(pod)["volumeMounts"] == [
        *MOUNTS,
        {"mountPath": "/etc/creds", "name": name, "readOnly": True},
    ]
    assert build_pod(taskrun(volumes=VOLUMES, volumeMounts=MOUNTS, secrets=[secret]), 1) == pod


def test_two_identical_secret_volumes_get_different_names() -> None:
    secret = {"deployType": "volume", "deployTarget": "/a", "secret": "s"}
    assert secret_volume_name(secret, 0) != secret_volume_name(secret, 1)


def test_secrets_attach_after_the_template_merge() -> None:
    template = {"spec": {"containers": [{"name": "t", "env": [{"name": "T", "value": "t"}]}]}}
    pod = build_pod(
        taskrun(
            envVars=ENV,
            podTemplate=template,
            secrets=[{"deployType": "env", "deployTarget": "X", "secret": "s", "key": "k"}],
        ),
        1,
    )
    assert [e["name"] for e in base(pod)["env"]] == ["T", "A", "B", "X"]


@pytest.mark.parametrize(
    ("secret", "field"),
    [
        ({"deployType": "file", "secret": "s"}, "spec.secrets[0].deployType"),
        ({"deployType": "env", "secret": "s", "key": "k"}, "spec.secrets[0].deployTarget"),
        ({"deployType": "volume", "secret": "s"}, "spec.secrets[0].deployTarget"),
        ({"deployType": "env", "deployTarget": "X"}, "spec.secrets[0].secret"),
    ],
)
def test_invalid_secret_is_a_spec_error(secret: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        build_pod(taskrun(secrets=[secret]), 1)
    assert err.value.field == field


# --- podTemplate: KPO's precedence and merge rules --------------------------------------------


def template_pod(template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return build_pod(taskrun(podTemplate=template, **spec), 1)


def test_template_container_zero_becomes_the_renamed_base_container() -> None:
    template = {
        "spec": {
            "containers": [
                {
                    "name": "tpl",
                    "image": "ignored",
                    "command": ["from-template"],
                    "workingDir": "/w",
                    "env": [{"name": "T", "value": "1"}],
                    "volumeMounts": [{"name": "tv", "mountPath": "/t"}],
                    "ports": [{"containerPort": 1}],
                    "resources": {"limits": {"cpu": "1"}},
                },
                {"name": "helper", "image": "helper:1"},
            ],
            "volumes": [{"name": "tv", "emptyDir": {}}],
        }
    }
    pod = template_pod(
        template,
        baseContainerName="main",
        envVars=ENV,
        volumes=VOLUMES,
        volumeMounts=MOUNTS,
        ports=PORTS,
        containerResources=RESOURCES,
    )
    main, helper = pod["spec"]["containers"]
    assert main["name"] == "main"
    assert main["image"] == "busybox:1.36"  # operator wins
    assert main["command"] == ["from-template"]  # operator's [] is falsy: template kept
    assert main["workingDir"] == "/w"  # only the template sets it
    assert main["resources"] == RESOURCES  # replaced, not deep-merged
    assert main["env"] == [{"name": "T", "value": "1"}, *ENV]  # base then operator
    assert main["volumeMounts"] == [{"name": "tv", "mountPath": "/t"}, *MOUNTS]
    assert main["ports"] == [{"containerPort": 1}, *PORTS]
    assert helper == {"name": "helper", "image": "helper:1"}
    assert pod["spec"]["volumes"] == [{"name": "tv", "emptyDir": {}}, *VOLUMES]


def test_template_without_containers_gets_the_operator_container() -> None:
    pod = template_pod({"spec": {"nodeName": "n1"}}, cmds=["x"])
    assert base(pod)["command"] == ["x"]
    assert pod["spec"]["nodeName"] == "n1"


@pytest.mark.parametrize(
    ("template_spec", "spec", "field", "expected"),
    [
        # A falsy operator value never overrides the template (KPO's merge_objects).
        ({"hostNetwork": True}, {"hostNetwork": False}, "hostNetwork", True),
        ({"automountServiceAccountToken": True}, {}, "automountServiceAccountToken", True),
        # ...and a falsy template value that is set still fills an unset operator field.
        ({"automountServiceAccountToken": False}, {}, "automountServiceAccountToken", False),
        ({"terminationGracePeriodSeconds": 0}, {}, "terminationGracePeriodSeconds", 0),
        ({"nodeSelector": {"a": "1"}}, {}, "nodeSelector", {"a": "1"}),
        # Truthy operator values replace whole fields, no deep merge.
        ({"nodeSelector": {"a": "1"}}, {"nodeSelector": {"b": "2"}}, "nodeSelector", {"b": "2"}),
        ({"tolerations": TOLERATION}, {"tolerations": []}, "tolerations", TOLERATION),
        (
            {"securityContext": {"runAsUser": 1, "fsGroup": 2}},
            {"securityContext": {"runAsUser": 3}},
            "securityContext",
            {"runAsUser": 3},
        ),
        ({"serviceAccountName": "t"}, {"serviceAccountName": "o"}, "serviceAccountName", "o"),
        ({"serviceAccountName": "t"}, {}, "serviceAccountName", "t"),
        ({"terminationGracePeriodSeconds": 9}, {}, "terminationGracePeriodSeconds", 9),
        (
            {"terminationGracePeriodSeconds": 9},
            {"terminationGracePeriod": 0},
            "terminationGracePeriodSeconds",
            9,
        ),
        ({"restartPolicy": "Always"}, {}, "restartPolicy", "Never"),
        ({"priorityClassName": "low"}, {"priorityClassName": "high"}, "priorityClassName", "high"),
    ],
)
def test_template_precedence(
    template_spec: dict[str, Any], spec: dict[str, Any], field: str, expected: Any
) -> None:
    assert template_pod({"spec": template_spec}, **spec)["spec"][field] == expected


def test_init_containers_merge_by_name() -> None:
    template = {
        "spec": {
            "initContainers": [
                {"name": "a", "image": "a:t", "env": [{"name": "T"}], "workingDir": "/t"},
                {"name": "b", "image": "b:t"},
            ]
        }
    }
    pod = template_pod(
        template,
        initContainers=[
            {"name": "c", "image": "c:o"},
            {"name": "a", "image": "a:o", "env": [{"name": "O"}]},
        ],
    )
    assert pod["spec"]["initContainers"] == [
        {"name": "a", "image": "a:o", "env": [{"name": "T"}, {"name": "O"}], "workingDir": "/t"},
        {"name": "b", "image": "b:t"},
        {"name": "c", "image": "c:o"},
    ]


def test_template_init_containers_kept_when_the_spec_has_none() -> None:
    template = {"spec": {"initContainers": [{"name": "a", "image": "a"}]}}
    assert template_pod(template)["spec"]["initContainers"] == [{"name": "a", "image": "a"}]


def test_template_metadata_merges_under_spec_and_controller_metadata() -> None:
    template = {
        "metadata": {
            "name": "ignored",
            "namespace": "elsewhere",
            "generateName": "x-",
            "labels": {"team": "t", "tier": "t"},
            "annotations": {"a": "t"},
            "uid": "stale",
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "1"}],
        },
        "spec": {},
        "status": {"phase": "Succeeded"},
    }
    pod = template_pod(template, labels={"tier": "o"}, annotations={"b": "o"})
    meta = pod["metadata"]
    assert meta["name"] == "run-1" and meta["namespace"] == "team-a"
    assert "generateName" not in meta and "uid" not in meta and "resourceVersion" not in meta
    assert "creationTimestamp" not in meta and "status" not in pod
    assert meta["labels"]["team"] == "t" and meta["labels"]["tier"] == "o"
    assert meta["annotations"] == {"a": "t", "b": "o", "taskrun.dev/uid": "0b6c-uid"}
    assert [r["kind"] for r in meta["ownerReferences"]] == ["ConfigMap", "TaskRun"]


def test_template_with_a_controller_owner_is_a_spec_error() -> None:
    ref = {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "1", "controller": True}
    with pytest.raises(SpecError) as err:
        template_pod({"metadata": {"ownerReferences": [ref]}})
    assert err.value.field == "spec.podTemplate.metadata.ownerReferences[0]"


# --- combinations the API server might accept but that cannot work ----------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"initContainers": [{"name": "base", "image": "x"}]},
            "spec.initContainers[0].name",
        ),
        (
            {"baseContainerName": "main", "initContainers": [{"name": "main", "image": "x"}]},
            "spec.initContainers[0].name",
        ),
        (
            {"initContainers": [{"name": "i", "image": "x"}, {"name": "i", "image": "y"}]},
            "spec.initContainers[1].name",
        ),
        (
            {"podTemplate": {"spec": {"containers": [{"name": "a"}, {"name": "base"}]}}},
            "spec.podTemplate.spec.containers[1].name",
        ),
        (
            {"doXcomPush": True, "initContainers": [{"name": "airflow-xcom-sidecar"}]},
            "spec.doXcomPush",
        ),
        (
            {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]},
            "spec.volumes[1].name",
        ),
        (
            {
                "volumes": [{"name": "v", "emptyDir": {}}],
                "podTemplate": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
            },
            "spec.volumes[0].name",
        ),
        (
            {"doXcomPush": True, "volumes": [{"name": "xcom", "emptyDir": {}}]},
            "spec.volumes[0].name",
        ),
        ({"volumeMounts": [{"name": "missing", "mountPath": "/m"}]}, "spec.volumeMounts[0]"),
        (
            {"initContainers": [{"name": "i", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]},
            "spec.initContainers[0].volumeMounts[0]",
        ),
        (
            {
                "podTemplate": {
                    "spec": {
                        "containers": [
                            {"name": "t", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}
                        ]
                    }
                }
            },
            "spec.podTemplate.spec.containers[0].volumeMounts[0]",
        ),
        ({"image": ""}, "spec.image"),
        ({"podTemplate": {"spec": {"volumes": {"name": "v"}}}}, "spec.podTemplate.spec.volumes"),
        ({"podTemplate": {"spec": "nope"}}, "spec.podTemplate.spec"),
        ({"podTemplate": {"metadata": {"labels": ["a"]}}}, "spec.podTemplate.metadata.labels"),
        (
            {"podTemplate": {"spec": {"containers": [{"name": "t", "env": {"A": "1"}}]}}},
            "spec.podTemplate.spec.containers[0].env",
        ),
    ],
)
def test_impossible_pod_is_a_spec_error(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        build_pod(taskrun(**spec), 1)
    assert err.value.field == field
    assert field in str(err.value)


def test_taskrun_without_identity_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="uid"):
        build_pod({"metadata": {"name": "x", "namespace": "y"}, "spec": {"image": "i"}}, 1)


def test_the_api_models_dump_builds_the_same_pod_as_the_raw_spec() -> None:
    raw = {
        "image": "busybox",
        "envVars": ENV,
        "secrets": [
            {"deployType": "volume", "deployTarget": "/s", "secret": "s"},
            {"deployType": "env", "deployTarget": "T", "secret": "s", "key": "k"},
        ],
        "volumes": VOLUMES,
        "volumeMounts": MOUNTS,
        "doXcomPush": True,
        "podTemplate": {"spec": {"containers": [{"name": "x", "image": "y", "workingDir": "/w"}]}},
    }
    dumped = TaskRunSpec.model_validate(raw).model_dump(by_alias=True, mode="json")
    assert dumped["cmds"] is None  # the dump really carries nulls and defaults
    tr = {"metadata": META}
    assert build_pod({**tr, "spec": dumped}, 1) == build_pod({**tr, "spec": raw}, 1)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [({}, "base"), ({"baseContainerName": None}, "base"), ({"baseContainerName": "main"}, "main")],
)
def test_base_container_name(spec: dict[str, Any], expected: str) -> None:
    assert base_container_name(spec) == expected
    assert base(build_pod(taskrun(**spec), 1))["name"] == expected
