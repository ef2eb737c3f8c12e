"""Every CEL rule of crds/taskrun.yaml, on the session's cluster (--cluster): each one
refuses an object that breaks it, naming the field and saying the rule's message, and
accepts one that keeps it.

The rules are read from the CRD itself, so a rule added to taskrun/api without a case here
fails `test_every_rule_has_a_case`. On devcluster this checks its CEL against the CRD; on
`--cluster=real` it checks that kube-apiserver compiles and applies them as the generator
meant (the unit tests in tests/unit/api evaluate them with cel-python only).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from testcluster import Cluster
from testcluster.client import ApiError

ROOT = Path(__file__).resolve().parents[2]
IMMUTABLE = "is immutable after creation (only spec.cancel may change)"
BASE: dict[str, Any] = {"image": "busybox:1.36"}
_names = itertools.count(1)


def crd_rules() -> list[tuple[str, str, str]]:
    """(path, rule, message) of every x-kubernetes-validations entry, in schema order."""
    crd = yaml.safe_load((ROOT / "crds" / "taskrun.yaml").read_text())
    found: list[tuple[str, str, str]] = []

    def walk(schema: dict[str, Any], path: str) -> None:
        for rule in schema.get("x-kubernetes-validations") or []:
            found.append((path, rule["rule"], rule["message"]))
        for name, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{path}.{name}" if path else name)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{path}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], f"{path}{{}}")

    for version in crd["spec"]["versions"]:
        walk(version["schema"]["openAPIV3Schema"], "")
    return found


@dataclass(frozen=True)
class Case:
    """Create rules: `valid` and `invalid` are specs to create. Transition rules (oldSelf):
    the TaskRun is created with `old`, then `valid` and `invalid` are tried as updates."""

    valid: dict[str, Any]
    invalid: dict[str, Any]
    field: str  # the path the refusal must name, as the API server spells it
    old: dict[str, Any] | None = None


def _spec(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


# Two values of each immutable field: created with the first, updated to the second.
IMMUTABLE_VALUES: dict[str, tuple[Any, Any]] = {
    "image": ("busybox:1.36", "busybox:1.37"),
    "cmds": (["sh"], ["bash"]),
    "arguments": (["-c", "true"], ["-c", "false"]),
    "envVars": ([{"name": "A", "value": "1"}], [{"name": "A", "value": "2"}]),
    "envFrom": ([{"configMapRef": {"name": "a"}}], [{"configMapRef": {"name": "b"}}]),
    "secrets": (
        [{"deployType": "env", "secret": "a"}],
        [{"deployType": "env", "secret": "b"}],
    ),
    "configmaps": (["a"], ["b"]),
    "ports": ([{"containerPort": 80}], [{"containerPort": 81}]),
    "volumeMounts": (
        [{"name": "v", "mountPath": "/a"}],
        [{"name": "v", "mountPath": "/b"}],
    ),
    "containerResources": ({"limits": {"cpu": "1"}}, {"limits": {"cpu": "2"}}),
    "containerSecurityContext": ({"runAsNonRoot": True}, {"runAsNonRoot": False}),
    "imagePullPolicy": ("Always", "Never"),
    "terminationMessagePolicy": ("File", "FallbackToLogsOnError"),
    "baseContainerName": ("base", "main"),
    "podRuntimeInfoEnvs": ([{"name": "A", "value": "1"}], [{"name": "A", "value": "2"}]),
    "volumes": ([{"name": "a", "emptyDir": {}}], [{"name": "b", "emptyDir": {}}]),
    "affinity": (
        {"podAffinity": {}},
        {"podAntiAffinity": {}},
    ),
    "nodeSelector": ({"a": "1"}, {"a": "2"}),
    "tolerations": ([{"key": "a", "operator": "Exists"}], [{"key": "b", "operator": "Exists"}]),
    "securityContext": ({"runAsUser": 1000}, {"runAsUser": 1001}),
    "serviceAccountName": ("a", "b"),
    "automountServiceAccountToken": (True, False),
    "hostNetwork": (False, True),
    "hostAliases": ([{"ip": "10.0.0.1"}], [{"ip": "10.0.0.2"}]),
    "dnsPolicy": ("ClusterFirst", "Default"),
    "dnsConfig": ({"searches": ["a"]}, {"searches": ["b"]}),
    "hostname": ("a", "b"),
    "subdomain": ("a", "b"),
    "schedulerName": ("a", "b"),
    "priorityClassName": ("a", "b"),
    "runtimeClassName": ("a", "b"),
    "initContainers": ([{"name": "a", "image": "x"}], [{"name": "b", "image": "x"}]),
    "imagePullSecrets": ([{"name": "a"}], [{"name": "b"}]),
    "labels": ({"a": "1"}, {"a": "2"}),
    "annotations": ({"a": "1"}, {"a": "2"}),
    "terminationGracePeriod": (1, 2),
    "activeDeadlineSeconds": (1, 2),
    "podTemplate": ({"metadata": {"labels": {"a": "1"}}}, {"metadata": {"labels": {"a": "2"}}}),
    "startupTimeoutSeconds": (1, 2),
    "scheduleTimeoutSeconds": (1, 2),
    "onFinishAction": ("keep_pod", "delete_pod"),
    "skipOnExitCode": ([1], [2]),
    "doXcomPush": (False, True),
    "getLogs": (False, True),
    "containerLogs": (["base"], ["other"]),
    "logEventsOnFailure": (False, True),
    "retries": (1, 2),
    "retryBackoff": ({"initialSeconds": 1}, {"initialSeconds": 2}),
    "ttlSecondsAfterFinished": (1, 2),
}

_ENV_SOURCE = {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
_TWO_SOURCES = {
    "fieldRef": {"fieldPath": "metadata.name"},
    "configMapKeyRef": {"name": "c", "key": "k"},
}
_PROBE = {"exec": {"command": ["true"]}}
_TWO_PROBES = {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}
_HANDLER = {"sleep": {"seconds": 1}}
_TWO_HANDLERS = {"sleep": {"seconds": 1}, "exec": {"command": ["true"]}}


def _init(**container: Any) -> list[dict[str, Any]]:
    return [{"name": "prep", "image": "busybox:1.36", **container}]


# Keyed by (path, message) as read from the CRD.
CASES: dict[tuple[str, str], Case] = {
    (
        "spec",
        "spec fields cannot be added or removed after creation (only spec.cancel may change)",
    ): Case(
        old=_spec(),
        valid=_spec(cancel=True),
        invalid=_spec(labels={"a": "1"}),
        field="spec",
    ),
    ("spec", "spec.cancel cannot be removed once true"): Case(
        old=_spec(cancel=True),
        valid=_spec(cancel=True),
        invalid=_spec(),
        field="spec",
    ),
    ("spec.cancel", "cannot go back from true to false"): Case(
        old=_spec(cancel=True),
        valid=_spec(cancel=True),
        invalid=_spec(cancel=False),
        field="spec.cancel",
    ),
    (
        "spec",
        "initContainers names must differ from baseContainerName and from airflow-xcom-sidecar",
    ): Case(
        valid=_spec(initContainers=_init()),
        invalid=_spec(initContainers=[{"name": "base", "image": "x"}]),
        field="spec.initContainers",
    ),
    ("spec.envVars[]", "value (non-empty) and valueFrom exclude each other"): Case(
        valid=_spec(envVars=[{"name": "A", **_ENV_SOURCE}]),
        invalid=_spec(envVars=[{"name": "A", "value": "1", **_ENV_SOURCE}]),
        field="spec.envVars[0]",
    ),
    (
        "spec.envVars[].valueFrom",
        "exactly one of configMapKeyRef, fieldRef, fileKeyRef, "
        "resourceFieldRef, secretKeyRef must be set",
    ): Case(
        valid=_spec(envVars=[{"name": "A", **_ENV_SOURCE}]),
        invalid=_spec(envVars=[{"name": "A", "valueFrom": _TWO_SOURCES}]),
        field="spec.envVars[0].valueFrom",
    ),
    ("spec.envFrom[]", "exactly one of configMapRef, secretRef must be set"): Case(
        valid=_spec(envFrom=[{"secretRef": {"name": "s"}}]),
        invalid=_spec(envFrom=[{"secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}]),
        field="spec.envFrom[0]",
    ),
    ("spec.secrets[]", "deployTarget (the mount path) is required when deployType is volume"): Case(
        valid=_spec(secrets=[{"deployType": "volume", "secret": "s", "deployTarget": "/s"}]),
        invalid=_spec(secrets=[{"deployType": "volume", "secret": "s"}]),
        field="spec.secrets[0]",
    ),
    ("spec.secrets[]", "deployTarget (the variable name) is required for env with a key"): Case(
        valid=_spec(
            secrets=[{"deployType": "env", "secret": "s", "key": "k", "deployTarget": "K"}]
        ),
        invalid=_spec(secrets=[{"deployType": "env", "secret": "s", "key": "k"}]),
        field="spec.secrets[0]",
    ),
    ("spec.secrets[]", "items apply to deployType volume only"): Case(
        valid=_spec(
            secrets=[
                {
                    "deployType": "volume",
                    "secret": "s",
                    "deployTarget": "/s",
                    "items": [{"key": "k", "path": "p"}],
                }
            ]
        ),
        invalid=_spec(
            secrets=[{"deployType": "env", "secret": "s", "items": [{"key": "k", "path": "p"}]}]
        ),
        field="spec.secrets[0]",
    ),
    ("spec.podRuntimeInfoEnvs[]", "value (non-empty) and valueFrom exclude each other"): Case(
        valid=_spec(podRuntimeInfoEnvs=[{"name": "A", **_ENV_SOURCE}]),
        invalid=_spec(podRuntimeInfoEnvs=[{"name": "A", "value": "1", **_ENV_SOURCE}]),
        field="spec.podRuntimeInfoEnvs[0]",
    ),
    (
        "spec.podRuntimeInfoEnvs[].valueFrom",
        "exactly one of configMapKeyRef, fieldRef, "
        "fileKeyRef, resourceFieldRef, secretKeyRef must be set",
    ): Case(
        valid=_spec(podRuntimeInfoEnvs=[{"name": "A", **_ENV_SOURCE}]),
        invalid=_spec(podRuntimeInfoEnvs=[{"name": "A", "valueFrom": _TWO_SOURCES}]),
        field="spec.podRuntimeInfoEnvs[0].valueFrom",
    ),
    ("spec.volumes[]", "at most one volume source may be set (none means emptyDir)"): Case(
        valid=_spec(volumes=[{"name": "v", "configMap": {"name": "c"}}]),
        invalid=_spec(volumes=[{"name": "v", "configMap": {"name": "c"}, "emptyDir": {}}]),
        field="spec.volumes[0]",
    ),
    ("spec.volumes[].projected.sources[]", "exactly one projection source must be set"): Case(
        valid=_spec(
            volumes=[{"name": "v", "projected": {"sources": [{"configMap": {"name": "c"}}]}}]
        ),
        invalid=_spec(
            volumes=[
                {
                    "name": "v",
                    "projected": {
                        "sources": [{"configMap": {"name": "c"}, "secret": {"name": "s"}}]
                    },
                }
            ]
        ),
        field="spec.volumes[0].projected.sources[0]",
    ),
    ("spec.initContainers[].env[]", "value (non-empty) and valueFrom exclude each other"): Case(
        valid=_spec(initContainers=_init(env=[{"name": "A", **_ENV_SOURCE}])),
        invalid=_spec(initContainers=_init(env=[{"name": "A", "value": "1", **_ENV_SOURCE}])),
        field="spec.initContainers[0].env[0]",
    ),
    (
        "spec.initContainers[].env[].valueFrom",
        "exactly one of configMapKeyRef, fieldRef, "
        "fileKeyRef, resourceFieldRef, secretKeyRef must be set",
    ): Case(
        valid=_spec(initContainers=_init(env=[{"name": "A", **_ENV_SOURCE}])),
        invalid=_spec(initContainers=_init(env=[{"name": "A", "valueFrom": _TWO_SOURCES}])),
        field="spec.initContainers[0].env[0].valueFrom",
    ),
    ("spec.initContainers[].envFrom[]", "exactly one of configMapRef, secretRef must be set"): Case(
        valid=_spec(initContainers=_init(envFrom=[{"configMapRef": {"name": "c"}}])),
        invalid=_spec(initContainers=_init(envFrom=[{}])),
        field="spec.initContainers[0].envFrom[0]",
    ),
    (
        "spec.initContainers[].lifecycle.postStart",
        "exactly one of exec, httpGet, sleep, tcpSocket must be set",
    ): Case(
        valid=_spec(initContainers=_init(lifecycle={"postStart": _HANDLER})),
        invalid=_spec(initContainers=_init(lifecycle={"postStart": _TWO_HANDLERS})),
        field="spec.initContainers[0].lifecycle.postStart",
    ),
    (
        "spec.initContainers[].lifecycle.preStop",
        "exactly one of exec, httpGet, sleep, tcpSocket must be set",
    ): Case(
        valid=_spec(initContainers=_init(lifecycle={"preStop": _HANDLER})),
        invalid=_spec(initContainers=_init(lifecycle={"preStop": _TWO_HANDLERS})),
        field="spec.initContainers[0].lifecycle.preStop",
    ),
    **{
        (
            f"spec.initContainers[].{probe}",
            "exactly one of exec, grpc, httpGet, tcpSocket must be set",
        ): Case(
            valid=_spec(initContainers=_init(**{probe: _PROBE})),
            invalid=_spec(initContainers=_init(**{probe: _TWO_PROBES})),
            field=f"spec.initContainers[0].{probe}",
        )
        for probe in ("livenessProbe", "readinessProbe", "startupProbe")
    },
    ("spec.retryBackoff", "maxSeconds must be >= initialSeconds"): Case(
        valid=_spec(retryBackoff={"initialSeconds": 5, "maxSeconds": 5}),
        invalid=_spec(retryBackoff={"initialSeconds": 5, "maxSeconds": 4}),
        field="spec.retryBackoff",
    ),
    **{
        (f"spec.{name}", IMMUTABLE): Case(
            old=_spec(**{name: first}),
            valid=_spec(**{name: first}, cancel=True),
            invalid=_spec(**{name: second}),
            field=f"spec.{name}",
        )
        for name, (first, second) in IMMUTABLE_VALUES.items()
    },
}

RULES = crd_rules()


def _key(path: str, message: str) -> tuple[str, str]:
    return (path, message)


def test_every_rule_has_a_case() -> None:
    """A rule added to the CRD needs a valid and an invalid object here."""
    assert len(RULES) >= 70, f"only {len(RULES)} rules read from the CRD"
    missing = [(p, m, r[:80]) for p, r, m in RULES if _key(p, m) not in CASES]
    assert not missing, f"CEL rules without a case in CASES: {missing}"
    stale = set(CASES) - {_key(p, m) for p, _r, m in RULES}
    assert not stale, f"cases for rules the CRD no longer has: {sorted(stale)}"


def _taskrun(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": copy.deepcopy(spec),
    }


def _refusal(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


@pytest.fixture(scope="module")
def rules_ns(cluster: Cluster) -> Any:
    name = "crd-rules"
    if cluster.get_or_none("namespaces", None, name) is None:
        cluster.create_namespace(name)
    yield name
    cluster.delete("namespaces", None, name, missing_ok=True)


@pytest.mark.parametrize(
    ("path", "message"),
    [pytest.param(p, m, id=f"{p}:{m[:40]}") for p, _r, m in RULES],
)
def test_rule_refuses_the_invalid_and_admits_the_valid(
    cluster: Cluster, rules_ns: str, path: str, message: str
) -> None:
    case = CASES.get(_key(path, message))
    if case is None:
        pytest.fail(f"no case for the rule at {path}: {message}")
    name = f"rule-{next(_names)}"
    resource = "taskruns"
    try:
        if case.old is None:
            err = _refusal(
                lambda: cluster.create(resource, rules_ns, _taskrun(rules_ns, name, case.invalid))
            )
            created = cluster.create(resource, rules_ns, _taskrun(rules_ns, name, case.valid))
            assert created["metadata"]["name"] == name
        else:
            created = cluster.create(resource, rules_ns, _taskrun(rules_ns, name, case.old))

            def update(spec: dict[str, Any]) -> Any:
                body = _taskrun(rules_ns, name, spec)
                body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
                return cluster.replace(resource, rules_ns, name, body)

            err = _refusal(lambda: update(case.invalid))
            updated = update(case.valid)
            assert updated["spec"].get("cancel") == case.valid.get("cancel")
    finally:
        # No controller runs here, so nothing holds it: later modules' controllers (all
        # namespaces) must not meet these TaskRuns.
        cluster.delete(resource, rules_ns, name, missing_ok=True)
    assert err.code == 422, f"{path}: expected 422, got {err.code}: {err.message}"
    assert message in err.message, (
        f"{path}: the refusal does not say the rule's message: {err.message}"
    )
    assert f"{case.field}:" in err.message, (
        f"{path}: the refusal does not name {case.field}: {err.message}"
    )
