"""The security policy: each denied field, its override, per-namespace config, built pods."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core.pod import build_pod
from controller.core.podsettings import PodSettings
from controller.core.security import (
    BASELINE_CAPABILITIES,
    PolicyConfigError,
    PolicySet,
    SecurityPolicy,
    Violation,
    check_pod,
    describe,
)

CLEAN_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "annotations": {}},
    "spec": {
        "containers": [{"name": "base", "image": "i", "securityContext": {}, "ports": []}],
        "initContainers": [{"name": "init", "image": "i"}],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "securityContext": {},
    },
}


def pod_with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    pod = copy.deepcopy(CLEAN_POD)
    target = pod
    for key in path[:-1]:
        target = target[key]
    if isinstance(target, list):
        target.append(value)
    else:
        target[path[-1]] = value
    return pod


BASE_SC = ("spec", "containers", 0, "securityContext")

# (what is set, the violation's field, the override that allows it)
DENIED: list[tuple[tuple[Any, ...], Any, str, dict[str, Any]]] = [
    (("spec", "hostNetwork"), True, "spec.hostNetwork", {"allow_host_network": True}),
    (("spec", "hostPID"), True, "spec.hostPID", {"allow_host_pid": True}),
    (("spec", "hostIPC"), True, "spec.hostIPC", {"allow_host_ipc": True}),
    (
        ("spec", "volumes", None),
        {"name": "root", "hostPath": {"path": "/"}},
        "spec.volumes[root].hostPath",
        {"allow_host_path": True},
    ),
    (
        ("spec", "serviceAccountName"),
        "admin",
        "spec.serviceAccountName",
        {"allowed_service_accounts": frozenset({"default", "admin"})},
    ),
    (
        ("spec", "serviceAccount"),
        "admin",
        "spec.serviceAccount",
        {"allowed_service_accounts": frozenset({"*"})},
    ),
    (
        (*BASE_SC, "privileged"),
        True,
        "spec.containers[base].securityContext.privileged",
        {"allow_privileged": True},
    ),
    (
        (*BASE_SC, "allowPrivilegeEscalation"),
        True,
        "spec.containers[base].securityContext.allowPrivilegeEscalation",
        {"allow_privilege_escalation": True},
    ),
    (
        (*BASE_SC, "capabilities"),
        {"add": ["SYS_ADMIN"]},
        "spec.containers[base].securityContext.capabilities.add",
        {"allowed_capabilities": BASELINE_CAPABILITIES | {"SYS_ADMIN"}},
    ),
    (
        (*BASE_SC, "capabilities"),
        {"add": ["ALL"]},
        "spec.containers[base].securityContext.capabilities.add",
        {"allowed_capabilities": frozenset({"*"})},
    ),
    (
        (*BASE_SC, "procMount"),
        "Unmasked",
        "spec.containers[base].securityContext.procMount",
        {"allow_unmasked_proc_mount": True},
    ),
    (
        (*BASE_SC, "seccompProfile"),
        {"type": "Unconfined"},
        "spec.containers[base].securityContext.seccompProfile.type",
        {"allow_unconfined": True},
    ),
    (
        ("spec", "securityContext", "seccompProfile"),
        {"type": "Unconfined"},
        "spec.securityContext.seccompProfile.type",
        {"allow_unconfined": True},
    ),
    (
        ("spec", "securityContext", "appArmorProfile"),
        {"type": "Unconfined"},
        "spec.securityContext.appArmorProfile.type",
        {"allow_unconfined": True},
    ),
    (
        ("metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/base"),
        "unconfined",
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/base]",
        {"allow_unconfined": True},
    ),
    (
        ("spec", "containers", 0, "ports", None),
        {"containerPort": 80, "hostPort": 80},
        "spec.containers[base].ports[80].hostPort",
        {"allow_host_ports": True},
    ),
    (
        ("spec", "securityContext", "sysctls"),
        [{"name": "kernel.msgmax", "value": "1"}],
        "spec.securityContext.sysctls[kernel.msgmax]",
        {"allow_unsafe_sysctls": True},
    ),
    (
        (*BASE_SC, "seLinuxOptions"),
        {"type": "spc_t"},
        "spec.containers[base].securityContext.seLinuxOptions.type",
        {"allow_custom_selinux": True},
    ),
    (
        ("spec", "securityContext", "seLinuxOptions"),
        {"user": "system_u"},
        "spec.securityContext.seLinuxOptions.user",
        {"allow_custom_selinux": True},
    ),
    (
        (*BASE_SC, "windowsOptions"),
        {"hostProcess": True},
        "spec.containers[base].securityContext.windowsOptions.hostProcess",
        {"allow_host_process": True},
    ),
    (
        ("spec", "initContainers", 0, "securityContext"),
        {"privileged": True},
        "spec.initContainers[init].securityContext.privileged",
        {"allow_privileged": True},
    ),
]


@pytest.mark.parametrize(("path", "value", "field", "override"), DENIED)
def test_denied_by_default_with_the_field_named(
    path: tuple[Any, ...], value: Any, field: str, override: dict[str, Any]
) -> None:
    violations = check_pod(pod_with(path, value), SecurityPolicy())
    assert [v.field for v in violations] == [field]
    assert violations[0].message


@pytest.mark.parametrize(("path", "value", "field", "override"), DENIED)
def test_allowed_by_its_override(
    path: tuple[Any, ...], value: Any, field: str, override: dict[str, Any]
) -> None:
    assert check_pod(pod_with(path, value), SecurityPolicy(**override)) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "hostNetwork"), False),
        (("spec", "serviceAccountName"), "default"),
        ((*BASE_SC, "privileged"), False),
        ((*BASE_SC, "allowPrivilegeEscalation"), False),
        ((*BASE_SC, "capabilities"), {"add": ["NET_BIND_SERVICE", "cap_chown"], "drop": ["ALL"]}),
        ((*BASE_SC, "procMount"), "Default"),
        ((*BASE_SC, "seccompProfile"), {"type": "RuntimeDefault"}),
        ((*BASE_SC, "seLinuxOptions"), {"type": "container_t", "level": "s0:c1"}),
        (("spec", "securityContext", "sysctls"), [{"name": "net.ipv4.tcp_syncookies"}]),
        (("spec", "containers", 0, "ports", None), {"containerPort": 80}),
        (("spec", "volumes", None), {"name": "cfg", "configMap": {"name": "c"}}),
        (("metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/b"), "x"),
    ],
)
def test_baseline_compatible_settings_pass(path: tuple[Any, ...], value: Any) -> None:
    assert check_pod(pod_with(path, value), SecurityPolicy()) == []


def test_clean_pod_and_unset_service_account_pass() -> None:
    assert check_pod(CLEAN_POD, SecurityPolicy()) == []
    assert check_pod({"spec": {"containers": [{"name": "b"}]}}, SecurityPolicy()) == []


def test_every_violation_is_reported() -> None:
    pod = pod_with(("spec", "hostPID"), True)
    pod["spec"]["containers"][0]["securityContext"] = {
        "privileged": True,
        "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]},
    }
    fields = [v.field for v in check_pod(pod, SecurityPolicy())]
    assert fields == [
        "spec.hostPID",
        "spec.containers[base].securityContext.privileged",
        "spec.containers[base].securityContext.capabilities.add",
        "spec.containers[base].securityContext.capabilities.add",
    ]
    message = describe(check_pod(pod, SecurityPolicy()))
    assert message.startswith("denied by the security policy: spec.hostPID: ")
    assert "'NET_ADMIN'" in message


# --- on built pods: podTemplate, initContainers and the sidecar are covered --------------------


XCOM_TASKRUN = {
    "metadata": {"name": "r", "namespace": "n", "uid": "u"},
    "spec": {"image": "i", "doXcomPush": True},
}


def built(**spec: Any) -> dict[str, Any]:
    tr = {"metadata": {"name": "r", "namespace": "n", "uid": "u"}, "spec": {"image": "i", **spec}}
    return build_pod(tr, 1)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"podTemplate": {"spec": {"hostPID": True}}}, "spec.hostPID"),
        (
            {"podTemplate": {"spec": {"hostNetwork": True}}, "hostNetwork": False},
            "spec.hostNetwork",
        ),
        (
            {
                "podTemplate": {
                    "spec": {
                        "containers": [
                            {"name": "x", "securityContext": {"privileged": True}},
                            {"name": "side", "image": "s", "securityContext": {"privileged": True}},
                        ]
                    }
                }
            },
            "spec.containers[base].securityContext.privileged",
        ),
        (
            {
                "initContainers": [
                    {"name": "setup", "image": "s", "securityContext": {"privileged": True}}
                ]
            },
            "spec.initContainers[setup].securityContext.privileged",
        ),
        (
            {"podTemplate": {"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/var"}}]}}},
            "spec.volumes[h].hostPath",
        ),
        ({"podTemplate": {"spec": {"serviceAccountName": "ci-admin"}}}, "spec.serviceAccountName"),
    ],
)
def test_policy_sees_what_the_template_brings(spec: dict[str, Any], field: str) -> None:
    assert field in [v.field for v in check_pod(built(**spec), SecurityPolicy())]


@pytest.mark.parametrize(
    "settings", [PodSettings(xcom_mode="native"), PodSettings(xcom_mode="exec")]
)
def test_default_built_pods_pass_in_both_xcom_modes(settings: PodSettings) -> None:
    pod = build_pod(XCOM_TASKRUN, 1, settings)
    assert len(pod["spec"]["initContainers"]) + len(pod["spec"]["containers"]) == 2
    assert check_pod(pod, SecurityPolicy()) == []


def test_privileged_sidecar_settings_are_checked_too() -> None:
    settings = PodSettings(xcom_sidecar_security_context={"privileged": True})
    fields = [v.field for v in check_pod(build_pod(XCOM_TASKRUN, 1, settings), SecurityPolicy())]
    assert fields == ["spec.initContainers[airflow-xcom-sidecar].securityContext.privileged"]


# --- configuration --------------------------------------------------------------------------


def test_policy_set_defaults() -> None:
    assert PolicySet.from_dict(None).for_namespace("any") == SecurityPolicy()
    assert PolicySet.from_dict({}).for_namespace("any") == SecurityPolicy()


def test_namespace_overrides_apply_on_top_of_the_configured_default() -> None:
    policies = PolicySet.from_dict(
        {
            "default": {"allowedServiceAccounts": ["default", "runner"], "allowHostPorts": True},
            "namespaces": {
                "ml": {"allowHostPath": True, "allowedCapabilities": ["cap_sys_ptrace"]},
                "ops": {"allowedServiceAccounts": ["*"]},
            },
        }
    )
    default = policies.for_namespace("team-a")
    assert default.allowed_service_accounts == {"default", "runner"}
    assert default.allow_host_ports and not default.allow_host_path
    ml = policies.for_namespace("ml")
    assert ml.allow_host_path and ml.allow_host_ports
    assert ml.allowed_service_accounts == {"default", "runner"}
    assert ml.allowed_capabilities == {"SYS_PTRACE"}
    ops = policies.for_namespace("ops")
    pod = pod_with(("spec", "serviceAccountName"), "cluster-admin")
    assert check_pod(pod, ops) == []
    assert [v.field for v in check_pod(pod, default)] == ["spec.serviceAccountName"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "security policy: expected a mapping"),
        ({"defaults": {}}, "unknown key 'defaults'"),
        (
            {"default": {"allowPrivileged": "yes"}},
            "default.allowPrivileged: expected true or false",
        ),
        ({"default": {"allowPrivliged": True}}, "default.allowPrivliged: unknown setting"),
        ({"default": []}, "default: expected a mapping"),
        ({"namespaces": ["a"]}, "namespaces: expected a mapping"),
        (
            {"namespaces": {"ml": {"allowedServiceAccounts": "runner"}}},
            "namespaces.ml.allowedServiceAccounts: expected a list of strings",
        ),
    ],
)
def test_config_errors_name_the_key(data: Any, message: str) -> None:
    with pytest.raises(PolicyConfigError, match=message):
        PolicySet.from_dict(data)


def test_every_setting_has_a_config_key() -> None:
    keys = {
        "allowPrivileged": True,
        "allowPrivilegeEscalation": True,
        "allowHostNetwork": True,
        "allowHostPid": True,
        "allowHostIpc": True,
        "allowHostPath": True,
        "allowHostPorts": True,
        "allowUnmaskedProcMount": True,
        "allowUnconfined": True,
        "allowUnsafeSysctls": True,
        "allowCustomSelinux": True,
        "allowHostProcess": True,
        "allowedCapabilities": ["*"],
        "allowedServiceAccounts": ["*"],
    }
    permissive = PolicySet.from_dict({"default": keys}).default
    for path, value, _, _ in DENIED:
        assert check_pod(pod_with(path, value), permissive) == []


hostile = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "containers",
                    "securityContext",
                    "capabilities",
                    "add",
                    "volumes",
                    "hostPath",
                    "ports",
                    "hostPort",
                    "name",
                    "sysctls",
                    "seLinuxOptions",
                    "metadata",
                    "annotations",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(hostile, hostile, hostile)
def test_check_pod_never_crashes_on_odd_shapes(a: Any, b: Any, c: Any) -> None:
    pods = [
        {"metadata": a, "spec": b},
        {"metadata": {"annotations": a}, "spec": {"containers": [b], "volumes": [c]}},
        {"spec": {"securityContext": a, "initContainers": [{"securityContext": b}], "hostPID": c}},
        {"spec": {"containers": [{"ports": [a], "securityContext": {"capabilities": b}}]}},
        {"spec": {"serviceAccountName": a, "securityContext": {"seLinuxOptions": b}}},
    ]
    for pod in pods:
        assert all(isinstance(v, Violation) for v in check_pod(pod, SecurityPolicy()))
