"""Properties of build_pod over generated specs, checked against Kubernetes' own Pod schema."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.core import naming
from controller.core.pod import SpecError, build_pod
from controller.core.podsettings import PodSettings
from controller.core.security import PolicySet, SecurityPolicy, check_pod

dns_label = st.from_regex(r"[a-z]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
env_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
# Hostile strings are fine wherever Kubernetes takes free text.
free_text = st.text(max_size=30)
# A small pool makes volume and container name clashes (SpecError) reachable.
volume_name = st.sampled_from(["data", "cache", "scratch", "xcom", "cfg"])
container_name = st.sampled_from(["base", "main", "setup", "helper", "airflow-xcom-sidecar"])
label_key = st.from_regex(r"([a-z]{1,8}\.dev/)?[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
label_value = st.from_regex(r"([a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?)?", fullmatch=True)

env_var = st.one_of(
    st.fixed_dictionaries({"name": env_name, "value": free_text}),
    st.fixed_dictionaries(
        {
            "name": env_name,
            "valueFrom": st.fixed_dictionaries(
                {"fieldRef": st.fixed_dictionaries({"fieldPath": st.just("status.podIP")})}
            ),
        }
    ),
)
env_from = st.one_of(
    st.fixed_dictionaries({"configMapRef": st.fixed_dictionaries({"name": dns_label})}),
    st.fixed_dictionaries({"secretRef": st.fixed_dictionaries({"name": dns_label})}),
)
volume = st.one_of(
    st.fixed_dictionaries({"name": volume_name, "emptyDir": st.just({})}),
    st.fixed_dictionaries(
        {"name": volume_name, "configMap": st.fixed_dictionaries({"name": dns_label})}
    ),
)
mount = st.fixed_dictionaries(
    {"name": volume_name, "mountPath": dns_label.map(lambda s: f"/mnt/{s}")},
    optional={"readOnly": st.booleans()},
)
port = st.fixed_dictionaries(
    {"containerPort": st.integers(1, 65535)}, optional={"name": dns_label.map(lambda s: s[:15])}
)
quantity = st.sampled_from(["100m", "1", "64Mi", "1Gi"])
resources = st.fixed_dictionaries(
    {},
    optional={
        "limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantity, max_size=2),
        "requests": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantity, max_size=2),
    },
)
container = st.fixed_dictionaries(
    {"name": container_name, "image": dns_label},
    optional={
        "command": st.lists(free_text, max_size=3),
        "env": st.lists(env_var, max_size=3),
        "volumeMounts": st.lists(mount, max_size=2),
        "workingDir": st.just("/work"),
        "resources": resources,
    },
)
toleration = st.fixed_dictionaries(
    {"key": dns_label, "operator": st.just("Exists")},
    optional={"effect": st.sampled_from(["NoSchedule", "NoExecute"])},
)
secret = st.one_of(
    st.fixed_dictionaries(
        {"deployType": st.just("env"), "deployTarget": env_name, "secret": dns_label},
        optional={"key": dns_label},
    ),
    st.fixed_dictionaries(
        {
            "deployType": st.just("volume"),
            "deployTarget": dns_label.map(lambda s: f"/secrets/{s}"),
            "secret": dns_label,
        }
    ),
)
template = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "labels": st.dictionaries(label_key, label_value, max_size=3),
                "annotations": st.dictionaries(label_key, free_text, max_size=2),
            },
        ),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "containers": st.lists(container, max_size=3),
                "initContainers": st.lists(container, max_size=2),
                "volumes": st.lists(volume, max_size=2),
                "hostNetwork": st.booleans(),
                "nodeSelector": st.dictionaries(label_key, label_value, max_size=2),
                "serviceAccountName": dns_label,
                "terminationGracePeriodSeconds": st.integers(0, 600),
                "restartPolicy": st.sampled_from(["Always", "OnFailure", "Never"]),
            },
        ),
    },
)

spec_fields = st.fixed_dictionaries(
    {"image": dns_label.map(lambda s: f"registry.local/{s}:1")},
    optional={
        "cmds": st.lists(free_text, max_size=3),
        "arguments": st.lists(free_text, max_size=3),
        "envVars": st.lists(env_var, max_size=4),
        "envFrom": st.lists(env_from, max_size=2),
        "secrets": st.lists(secret, max_size=3),
        "configmaps": st.lists(dns_label, max_size=2),
        "ports": st.lists(port, max_size=2, unique_by=lambda p: p["containerPort"]),
        "volumes": st.lists(volume, max_size=3),
        "volumeMounts": st.lists(mount, max_size=3),
        "containerResources": resources,
        "nodeSelector": st.dictionaries(label_key, label_value, max_size=2),
        "tolerations": st.lists(toleration, max_size=2),
        "securityContext": st.fixed_dictionaries({}, optional={"runAsUser": st.integers(0, 10**6)}),
        "containerSecurityContext": st.fixed_dictionaries(
            {}, optional={"readOnlyRootFilesystem": st.booleans()}
        ),
        "serviceAccountName": dns_label,
        "automountServiceAccountToken": st.booleans(),
        "hostNetwork": st.booleans(),
        "hostAliases": st.lists(
            st.fixed_dictionaries({"ip": st.just("10.0.0.1"), "hostnames": st.lists(dns_label)}),
            max_size=1,
        ),
        "dnsPolicy": st.sampled_from(["ClusterFirst", "Default"]),
        "hostname": dns_label,
        "subdomain": dns_label,
        "schedulerName": dns_label,
        "priorityClassName": dns_label,
        "runtimeClassName": dns_label,
        "initContainers": st.lists(container, max_size=2),
        "imagePullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
        "imagePullSecrets": st.lists(st.fixed_dictionaries({"name": dns_label}), max_size=2),
        "labels": st.dictionaries(label_key, label_value, max_size=3),
        "annotations": st.dictionaries(label_key, free_text, max_size=3),
        "terminationGracePeriod": st.integers(0, 3600),
        "activeDeadlineSeconds": st.integers(1, 10**6),
        "terminationMessagePolicy": st.sampled_from(["File", "FallbackToLogsOnError"]),
        "baseContainerName": st.sampled_from(["base", "main", "task"]),
        "podRuntimeInfoEnvs": st.lists(env_var, max_size=2),
        "doXcomPush": st.booleans(),
        "podTemplate": template,
    },
)
PERMISSIVE = PolicySet.from_dict(
    {"default": {"allowHostNetwork": True, "allowedServiceAccounts": ["*"]}}
).default
taskrun_names = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,80}[a-z0-9])?", fullmatch=True)
pod_settings = st.builds(PodSettings, xcom_mode=st.sampled_from(["native", "exec"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=spec_fields, name=taskrun_names, attempt=st.integers(1, 100), config=pod_settings)
def test_build_pod_properties(
    spec: dict[str, Any], name: str, attempt: int, config: PodSettings
) -> None:
    tr = {"metadata": {"name": name, "namespace": "ns", "uid": "uid-1"}, "spec": spec}
    before = copy.deepcopy(tr)
    try:
        pod = build_pod(tr, attempt, config)
    except SpecError as err:
        assert err.field.startswith("spec."), err.field
        event(f"SpecError {err.field.split('[')[0]}")
        return
    event("built")
    assert tr == before, "build_pod must not mutate its input"
    assert build_pod(tr, attempt, config) == pod, "build_pod must be deterministic"

    pod_spec = pod["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["containers"][0]["name"] == spec.get("baseContainerName", "base")
    assert pod_spec["containers"][0]["image"] == spec["image"]
    owners = [r for r in pod["metadata"]["ownerReferences"] if r.get("controller")]
    assert owners == [
        {
            "apiVersion": "taskrun.dev/v1alpha1",
            "kind": "TaskRun",
            "name": name,
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert naming.owner_uid(pod) == "uid-1"
    assert len(pod["metadata"]["name"]) <= 63
    everything = [*pod_spec.get("initContainers", []), *pod_spec["containers"]]
    names = [c["name"] for c in everything]
    assert len(names) == len(set(names))
    if spec.get("doXcomPush"):
        assert pod_spec["volumes"][0] == {"name": "xcom", "emptyDir": {}}
        assert "airflow-xcom-sidecar" in names

    # The policy judges the built pod, wherever a field came from (spec or podTemplate).
    fields = {v.field for v in check_pod(pod, SecurityPolicy())}
    assert ("spec.hostNetwork" in fields) == pod_spec["hostNetwork"]
    account = pod_spec.get("serviceAccountName")
    assert ("spec.serviceAccountName" in fields) == (account not in (None, "default"))
    assert check_pod(pod, PERMISSIVE) == []

    try:
        kubernetes_validate.validate(pod, "1.37.0", strict=True)
    except kubernetes_validate.ValidationError as err:
        raise AssertionError(f"invalid pod: {err.message} at {list(err.path)}") from None


POD_KEYS = [
    "metadata",
    "spec",
    "labels",
    "annotations",
    "ownerReferences",
    "controller",
    "containers",
    "initContainers",
    "volumes",
    "volumeMounts",
    "env",
    "envFrom",
    "ports",
    "name",
    "image",
    "command",
    "hostNetwork",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(POD_KEYS), children, max_size=4)
    ),
    max_leaves=25,
)


odd_object = st.dictionaries(st.sampled_from(POD_KEYS), json_values, max_size=4)
odd_list = st.lists(odd_object, max_size=3) | json_values
odd_container = st.fixed_dictionaries(
    {},
    optional={
        key: odd_list if key != "name" else json_values
        for key in ("name", "env", "envFrom", "ports", "volumeMounts", "command")
    },
)
odd_containers = st.lists(odd_container, max_size=3) | json_values
odd_template = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "labels": json_values,
                "annotations": json_values,
                "ownerReferences": odd_list,
            },
        )
        | json_values,
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "containers": odd_containers,
                "initContainers": odd_containers,
                "volumes": odd_list,
            },
        )
        | odd_object,
    },
)


@settings(max_examples=200, deadline=None)
@given(template=odd_template)
def test_any_podtemplate_builds_or_is_a_spec_error(template: dict[str, Any]) -> None:
    tr = {
        "metadata": {"name": "r", "namespace": "ns", "uid": "u"},
        "spec": {"image": "i", "envVars": [{"name": "A", "value": "1"}], "podTemplate": template},
    }
    try:
        pod = build_pod(tr, 1)
    except SpecError as err:
        assert err.field.startswith("spec.podTemplate"), err
        return
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["name"] == "base"
