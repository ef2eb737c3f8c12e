"""Every TaskRunSpec field: a valid value is accepted, an invalid one is refused by name."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from taskrun.api import TaskRunSpec, format_validation_error, validate_spec

# field (wire name) -> (valid value, invalid value, text the error must contain)
CASES: dict[str, tuple[Any, Any, str]] = {
    "image": ("busybox:1.36", "", "spec.image: String should have at least 1 character"),
    "cmds": (["sh", "-c"], "sh -c", "spec.cmds: Input should be a valid list"),
    "arguments": (["echo hi"], [1], "spec.arguments[0]: Input should be a valid string"),
    "envVars": (
        [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
        [{"value": "1"}],
        "spec.envVars[0].name: Field required",
    ),
    "envFrom": (
        [{"configMapRef": {"name": "cm"}, "prefix": "P_"}],
        [{"configMapRef": {"nam": "cm"}}],
        "spec.envFrom[0].configMapRef.nam: Extra inputs are not permitted",
    ),
    "secrets": (
        [
            {"deployType": "env", "secret": "s"},
            {"deployType": "volume", "secret": "s", "deployTarget": "/etc/s"},
        ],
        [{"deployType": "file", "secret": "s"}],
        "spec.secrets[0].deployType: Input should be 'env' or 'volume'",
    ),
    "configmaps": (["app-config"], ["App_Config"], "spec.configmaps[0]: String should match"),
    "ports": (
        [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
        [{"containerPort": 8080, "protocol": "HTTP"}],
        "spec.ports[0].protocol: Input should be 'TCP', 'UDP' or 'SCTP' (got 'HTTP')",
    ),
    "volumeMounts": (
        [{"name": "data", "mountPath": "/data", "readOnly": True}],
        [{"name": "data", "mountPath": "/data", "mountPropagation": "Sideways"}],
        "spec.volumeMounts[0].mountPropagation: Input should be",
    ),
    "containerResources": (
        {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 1}},
        {"limits": {"memory": "12 GB"}},
        "spec.containerResources.limits.memory: '12 GB' is not a Kubernetes quantity",
    ),
    "containerSecurityContext": (
        {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        {"runAsNonRoot": "yes"},
        "spec.containerSecurityContext.runAsNonRoot: Input should be a valid boolean",
    ),
    "imagePullPolicy": ("IfNotPresent", "Sometimes", "spec.imagePullPolicy: Input should be"),
    "terminationMessagePolicy": (
        "FallbackToLogsOnError",
        "Fallback",
        "spec.terminationMessagePolicy: Input should be 'File' or 'FallbackToLogsOnError'",
    ),
    "baseContainerName": ("main", "Main", "spec.baseContainerName: String should match pattern"),
    "podRuntimeInfoEnvs": (
        [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        [{"name": "POD_IP", "valueFrom": {"fieldRef": {}}}],
        "spec.podRuntimeInfoEnvs[0].valueFrom.fieldRef.fieldPath: Field required",
    ),
    "volumes": (
        [
            {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ],
        [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
        "spec.volumes: volume names must be unique, repeated: data",
    ),
    "affinity": (
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
        "nodeSelectorTerms: Field required",
    ),
    "nodeSelector": (
        {"kubernetes.io/os": "linux"},
        {"disk": "fast ssd"},
        "spec.nodeSelector.disk: String should match pattern",
    ),
    "tolerations": (
        [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        [{"key": "gpu", "effect": "NoScheduling"}],
        "spec.tolerations[0].effect: Input should be",
    ),
    "securityContext": (
        {"runAsUser": 1000, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
        {"runAsUser": "1000"},
        "spec.securityContext.runAsUser: Input should be a valid integer (got '1000')",
    ),
    "serviceAccountName": ("runner", "Runner!", "spec.serviceAccountName: String should match"),
    "automountServiceAccountToken": (False, "false", "spec.automountServiceAccountToken: Input"),
    "hostNetwork": (True, 1, "spec.hostNetwork: Input should be a valid boolean (got 1)"),
    "hostAliases": (
        [{"ip": "10.0.0.1", "hostnames": ["db"]}],
        [{"hostnames": ["db"]}],
        "spec.hostAliases[0].ip: Field required",
    ),
    "dnsPolicy": ("ClusterFirst", "Cluster", "spec.dnsPolicy: Input should be"),
    "dnsConfig": (
        {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots", "value": "2"}]},
        {"nameservers": "1.1.1.1"},
        "spec.dnsConfig.nameservers: Input should be a valid list",
    ),
    "hostname": ("worker-1", "worker_1", "spec.hostname: String should match pattern"),
    "subdomain": ("tasks", "a" * 64, "spec.subdomain: String should have at most 63 characters"),
    "schedulerName": ("my-scheduler", "", "spec.schedulerName: String should have at least 1"),
    "priorityClassName": ("high", "High", "spec.priorityClassName: String should match pattern"),
    "runtimeClassName": ("gvisor", "g visor", "spec.runtimeClassName: String should match"),
    "initContainers": (
        [{"name": "init", "image": "busybox", "command": ["true"]}],
        [{"name": "base", "image": "busybox"}],
        "spec.initContainers: [0].name 'base' is taken by the base container",
    ),
    "initContainers#count": (
        [{"name": f"c{i}", "image": "busybox"} for i in range(64)],
        [{"name": f"c{i}", "image": "busybox"} for i in range(65)],
        "spec.initContainers: List should have at most 64 items after validation, not 65",
    ),
    "initContainers#name": (
        [{"name": "a" * 63}],
        [{"name": "Init"}],
        "spec.initContainers[0].name: String should match pattern",
    ),
    "imagePullSecrets": ([{"name": "regcred"}], ["regcred"], "spec.imagePullSecrets[0]: Input"),
    "labels": (
        {"app.kubernetes.io/name": "etl", "team": ""},
        {"team": "a" * 64},
        "spec.labels.team: String should have at most 63 characters",
    ),
    "annotations": (
        {"example.com/any": "any text, even long " * 10},
        {"bad key!": "x"},
        "spec.annotations.bad key! (key): 'bad key!' is not a qualified name",
    ),
    "terminationGracePeriod": (30, -1, "spec.terminationGracePeriod: Input should be greater"),
    "activeDeadlineSeconds": (3600, 0, "spec.activeDeadlineSeconds: Input should be greater"),
    "podTemplate": (
        {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "base"}]}},
        {"spec": {"containers": [{"name": "base", "imagePullPolicy": "Sometimes"}]}},
        "spec.podTemplate.spec.containers[0].imagePullPolicy: Input should be",
    ),
    "startupTimeoutSeconds": (300, 0, "spec.startupTimeoutSeconds: Input should be greater than"),
    "scheduleTimeoutSeconds": (
        60,
        8 * 24 * 3600,
        "spec.scheduleTimeoutSeconds: Input should be less than or equal to 604800 (got 691200)",
    ),
    "onFinishAction": ("keep_pod", "keep", "spec.onFinishAction: Input should be 'delete_pod'"),
    "skipOnExitCode": (
        [0, 99, 255],
        [256],
        "spec.skipOnExitCode[0]: Input should be less than or equal to 255 (got 256)",
    ),
    "doXcomPush": (True, "True", "spec.doXcomPush: Input should be a valid boolean"),
    "getLogs": (False, None, "spec.getLogs: Input should be a valid boolean (got None)"),
    "containerLogs": (["base", "sidecar"], [""], "spec.containerLogs[0]: String should have"),
    "logEventsOnFailure": (True, "no", "spec.logEventsOnFailure: Input should be a valid boolean"),
    "retries": (3, 101, "spec.retries: Input should be less than or equal to 100 (got 101)"),
    "retryBackoff": (
        {"initialSeconds": 5, "factor": 1.5, "maxSeconds": 60},
        {"initialSeconds": 60, "maxSeconds": 5},
        "spec.retryBackoff: maxSeconds (5) must be >= initialSeconds (60)",
    ),
    "cancel": (True, "yes", "spec.cancel: Input should be a valid boolean (got 'yes')"),
    "ttlSecondsAfterFinished": (0, -5, "spec.ttlSecondsAfterFinished: Input should be greater"),
}


def test_every_field_has_a_case() -> None:
    wire_names = {info.alias or name for name, info in TaskRunSpec.model_fields.items()}
    assert wire_names == {case.split("#")[0] for case in CASES}


@pytest.mark.parametrize("field", sorted(CASES))
def test_valid_value_is_accepted_and_round_trips(field: str) -> None:
    valid, _, _ = CASES[field]
    name = field.split("#")[0]
    spec = validate_spec({"image": "busybox", name: valid})
    assert spec.to_dict()[name] == valid


@pytest.mark.parametrize("field", sorted(CASES))
def test_invalid_value_is_refused_naming_the_field(field: str) -> None:
    _, invalid, expected = CASES[field]
    name = field.split("#")[0]
    with pytest.raises(ValidationError) as caught:
        validate_spec({"image": "busybox", name: invalid})
    message = format_validation_error(caught.value)
    assert expected in message
    assert all(line.startswith(f"spec.{name}") for line in message.splitlines())


def test_python_names_work_too() -> None:
    spec = TaskRunSpec(image="busybox", env_vars=[], startup_timeout_seconds=5)
    assert spec.to_dict()["startupTimeoutSeconds"] == 5


def test_defaults_are_the_documented_ones() -> None:
    spec = validate_spec({"image": "busybox"})
    assert spec.to_dict() == {
        "image": "busybox",
        "terminationMessagePolicy": "File",
        "baseContainerName": "base",
        "hostNetwork": False,
        "startupTimeoutSeconds": 120,
        "onFinishAction": "delete_pod",
        "doXcomPush": False,
        "getLogs": True,
        "logEventsOnFailure": False,
        "retries": 0,
        "cancel": False,
    }
    assert spec.effective_schedule_timeout_seconds == 120
    assert spec.effective_container_logs == ["base"]
    assert spec.effective_retry_backoff.to_dict() == {
        "initialSeconds": 10,
        "factor": 2.0,
        "maxSeconds": 300,
    }


@pytest.mark.parametrize(
    ("spec", "schedule", "logs"),
    [
        ({"startupTimeoutSeconds": 30}, 30, ["base"]),
        ({"startupTimeoutSeconds": 30, "scheduleTimeoutSeconds": 600}, 600, ["base"]),
        ({"baseContainerName": "main"}, 120, ["main"]),
        ({"containerLogs": ["a", "b"]}, 120, ["a", "b"]),
        ({"getLogs": False, "containerLogs": ["a"]}, 120, []),
    ],
)
def test_effective_values(spec: dict[str, Any], schedule: int, logs: list[str]) -> None:
    parsed = validate_spec({"image": "busybox", **spec})
    assert parsed.effective_schedule_timeout_seconds == schedule
    assert parsed.effective_container_logs == logs


def test_required_image_and_unknown_field() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_spec({"imagee": "busybox"})
    assert format_validation_error(caught.value).splitlines() == [
        "spec.image: Field required",
        "spec.imagee: Extra inputs are not permitted",
    ]


SECRET_CASES = [
    ({"deployType": "env", "secret": "db"}, None),
    ({"deployType": "env", "secret": "db", "key": "password", "deployTarget": "DB_PASSWORD"}, None),
    ({"deployType": "volume", "secret": "db", "deployTarget": "/etc/db"}, None),
    (
        {
            "deployType": "volume",
            "secret": "db",
            "deployTarget": "/etc/db",
            "items": [{"key": "password", "path": "pw"}],
        },
        None,
    ),
    ({"deployType": "volume", "secret": "db"}, "deployTarget (the mount path) is required"),
    ({"deployType": "env", "secret": "db", "key": "k"}, "deployTarget (the variable name) is"),
    ({"deployType": "env", "secret": "db", "items": []}, "items apply to deployType volume only"),
    ({"deployType": "env", "secret": "Db"}, "spec.secrets[0].secret: String should match"),
    ({"deployType": "env", "secret": "db", "key": ""}, "spec.secrets[0].key: String should have"),
    ({"deployType": "env"}, "spec.secrets[0].secret: Field required"),
    ({"secret": "db"}, "spec.secrets[0].deployType: Field required"),
    (
        {"deployType": "volume", "secret": "db", "deployTarget": "/x", "items": [{"key": "k"}]},
        "spec.secrets[0].items[0].path: Field required",
    ),
]


@pytest.mark.parametrize(("secret", "error"), SECRET_CASES)
def test_secret_mount(secret: dict[str, Any], error: str | None) -> None:
    spec = {"image": "busybox", "secrets": [secret]}
    if error is None:
        assert validate_spec(spec).to_dict()["secrets"] == [secret]
        return
    with pytest.raises(ValidationError) as caught:
        validate_spec(spec)
    assert error in format_validation_error(caught.value)


BACKOFF_CASES = [
    ({}, None),
    ({"initialSeconds": 0, "factor": 1, "maxSeconds": 0}, None),
    ({"initialSeconds": -1}, "spec.retryBackoff.initialSeconds: Input should be greater than"),
    ({"factor": 0.5}, "spec.retryBackoff.factor: Input should be greater than or equal to 1"),
    ({"factor": 11}, "spec.retryBackoff.factor: Input should be less than or equal to 10"),
    ({"factor": "2"}, "spec.retryBackoff.factor: Input should be a valid number"),
    ({"maxSeconds": 10**7}, "spec.retryBackoff.maxSeconds: Input should be less than or equal"),
    ({"maxSeconds": 5}, "spec.retryBackoff: maxSeconds (5) must be >= initialSeconds (10)"),
    ({"maxSecond": 5}, "spec.retryBackoff.maxSecond: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("backoff", "error"), BACKOFF_CASES)
def test_retry_backoff_fields(backoff: dict[str, Any], error: str | None) -> None:
    spec = {"image": "busybox", "retryBackoff": backoff}
    if error is None:
        validate_spec(spec)
        return
    with pytest.raises(ValidationError) as caught:
        validate_spec(spec)
    assert error in format_validation_error(caught.value)


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        ({}, [0, 0, 10, 20, 40, 80, 160, 300, 300]),
        ({"initialSeconds": 1, "factor": 3, "maxSeconds": 20}, [0, 0, 1, 3, 9, 20, 20]),
        ({"initialSeconds": 5, "factor": 1}, [0, 0, 5, 5, 5]),
        ({"initialSeconds": 0}, [0, 0, 0, 0]),
    ],
)
def test_retry_delay(backoff: dict[str, Any], delays: list[float]) -> None:
    parsed = validate_spec({"image": "x", "retryBackoff": backoff}).effective_retry_backoff
    assert [parsed.delay_seconds(attempt) for attempt in range(len(delays))] == delays
