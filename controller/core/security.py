"""The security policy: what a pod built from a TaskRun may ask of the node.

Whoever may create TaskRuns in a namespace may run pods there; the controller must not hand
out more. The checks follow the Kubernetes Pod Security Standard "Baseline" and run on the
built pod, so podTemplate, initContainers and the xcom sidecar are covered as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Capabilities Baseline lets a container add.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# Sysctls Baseline calls safe (namespaced, no effect outside the pod).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
BASELINE_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
ANY = "*"


@dataclass(frozen=True)
class Violation:
    """One thing the policy denies: the pod field path and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class SecurityPolicy:
    """What pods may do; every ``allow_*`` defaults to deny.

    ``allowed_capabilities`` may hold ``"*"`` (any); ``allowed_service_accounts`` may hold
    ``"*"`` (any account). An unset service account is always allowed.
    """

    allow_privileged: bool = False
    allow_privilege_escalation: bool = False
    allow_host_network: bool = False
    allow_host_pid: bool = False
    allow_host_ipc: bool = False
    allow_host_path: bool = False
    allow_host_ports: bool = False
    allow_unmasked_proc_mount: bool = False
    allow_unconfined: bool = False
    allow_unsafe_sysctls: bool = False
    allow_custom_selinux: bool = False
    allow_host_process: bool = False
    allowed_capabilities: frozenset[str] = BASELINE_CAPABILITIES
    allowed_service_accounts: frozenset[str] = frozenset({"default"})


# Config key (camelCase, as in the controller's config file) -> SecurityPolicy field.
_CONFIG_KEYS = {
    "".join(w if i == 0 else w.capitalize() for i, w in enumerate(f.name.split("_"))): f.name
    for f in dataclasses.fields(SecurityPolicy)
}


class PolicyConfigError(ValueError):
    """The security policy configuration is invalid; the message names the key."""


@dataclass(frozen=True)
class PolicySet:
    """A default policy and per-namespace policies (overrides on top of the default)."""

    default: SecurityPolicy = field(default_factory=SecurityPolicy)
    namespaces: Mapping[str, SecurityPolicy] = field(default_factory=dict)

    def for_namespace(self, namespace: str) -> SecurityPolicy:
        """The policy that applies to pods in ``namespace``."""
        return self.namespaces.get(namespace, self.default)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PolicySet:
        """Parse ``{default: {...}, namespaces: {ns: {...}}}`` (camelCase keys).

        Raises PolicyConfigError naming the offending key.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PolicyConfigError(f"security policy: expected a mapping, got {_kind(data)}")
        unknown = set(data) - {"default", "namespaces"}
        if unknown:
            raise PolicyConfigError(
                f"security policy: unknown key {sorted(unknown)[0]!r}; "
                "expected 'default' and 'namespaces'"
            )
        default = _overrides(SecurityPolicy(), data.get("default"), "default")
        namespaces = data.get("namespaces") or {}
        if not isinstance(namespaces, Mapping):
            raise PolicyConfigError(f"namespaces: expected a mapping, got {_kind(namespaces)}")
        return cls(
            default=default,
            namespaces={
                str(ns): _overrides(default, overrides, f"namespaces.{ns}")
                for ns, overrides in namespaces.items()
            },
        )


def _kind(value: Any) -> str:
    return type(value).__name__


def _overrides(base: SecurityPolicy, data: Any, where: str) -> SecurityPolicy:
    if data is None:
        return base
    if not isinstance(data, Mapping):
        raise PolicyConfigError(f"{where}: expected a mapping, got {_kind(data)}")
    changes: dict[str, Any] = {}
    for key, value in data.items():
        name = _CONFIG_KEYS.get(key)
        if name is None:
            raise PolicyConfigError(
                f"{where}.{key}: unknown setting; known: {', '.join(sorted(_CONFIG_KEYS))}"
            )
        if name.startswith("allowed_"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PolicyConfigError(f"{where}.{key}: expected a list of strings, got {value!r}")
            if name == "allowed_capabilities":
                value = [_capability(v) for v in value]
            changes[name] = frozenset(value)
        else:
            if not isinstance(value, bool):
                raise PolicyConfigError(f"{where}.{key}: expected true or false, got {value!r}")
            changes[name] = value
    return dataclasses.replace(base, **changes)


def _capability(name: str) -> str:
    name = name.strip().upper()
    return name.removeprefix("CAP_")


def check_pod(pod: Mapping[str, Any], policy: SecurityPolicy) -> list[Violation]:
    """Every way ``pod`` (a built v1 Pod manifest) breaks ``policy``; empty when it complies."""
    return list(_violations(pod, policy))


def describe(violations: list[Violation]) -> str:
    """A one-line message for status and events."""
    return "denied by the security policy: " + "; ".join(str(v) for v in violations)


def _violations(pod: Mapping[str, Any], policy: SecurityPolicy) -> Iterator[Violation]:
    spec = _map(pod, "spec")
    for key, allowed, why in (
        ("hostNetwork", policy.allow_host_network, "shares the node's network namespace"),
        ("hostPID", policy.allow_host_pid, "shares the node's process namespace"),
        ("hostIPC", policy.allow_host_ipc, "shares the node's IPC namespace"),
    ):
        if spec.get(key) and not allowed:
            yield Violation(f"spec.{key}", f"{why}; not allowed")

    yield from _service_account(spec, policy)

    for volume in _list(spec, "volumes"):
        if isinstance(volume, Mapping) and volume.get("hostPath") and not policy.allow_host_path:
            source = volume["hostPath"]
            path = source.get("path") if isinstance(source, Mapping) else None
            yield Violation(
                f"spec.volumes[{volume.get('name')}].hostPath",
                f"mounts {path!r} from the node; not allowed",
            )

    yield from _security_context(
        "spec.securityContext", _map(spec, "securityContext"), policy, pod_level=True
    )

    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in _list(spec, kind):
            if isinstance(container, Mapping):
                yield from _container(f"spec.{kind}[{container.get('name')}]", container, policy)

    annotations = _map(_map(pod, "metadata"), "annotations")
    for key, value in annotations.items():
        if (
            str(key).startswith(APPARMOR_ANNOTATION_PREFIX)
            and str(value).lower() == "unconfined"
            and not policy.allow_unconfined
        ):
            yield Violation(f"metadata.annotations[{key}]", "AppArmor unconfined; not allowed")


def _service_account(spec: Mapping[str, Any], policy: SecurityPolicy) -> Iterator[Violation]:
    if ANY in policy.allowed_service_accounts:
        return
    allowed = ", ".join(sorted(policy.allowed_service_accounts)) or "none"
    # serviceAccount is the deprecated alias the API server still copies into
    # serviceAccountName when that is empty.
    for key in ("serviceAccountName", "serviceAccount"):
        account = spec.get(key)
        if account and (
            not isinstance(account, str) or account not in policy.allowed_service_accounts
        ):
            yield Violation(
                f"spec.{key}",
                f"service account {account!r} is not allowed in this namespace "
                f"(allowed: {allowed})",
            )


def _container(
    where: str, container: Mapping[str, Any], policy: SecurityPolicy
) -> Iterator[Violation]:
    for port in _list(container, "ports"):
        if isinstance(port, Mapping) and port.get("hostPort") and not policy.allow_host_ports:
            yield Violation(
                f"{where}.ports[{port.get('containerPort')}].hostPort",
                f"binds port {port['hostPort']} on the node; not allowed",
            )
    context = _map(container, "securityContext")
    yield from _security_context(f"{where}.securityContext", context, policy, pod_level=False)
    if context.get("privileged") and not policy.allow_privileged:
        yield Violation(f"{where}.securityContext.privileged", "privileged; not allowed")
    if context.get("allowPrivilegeEscalation") is True and not policy.allow_privilege_escalation:
        yield Violation(
            f"{where}.securityContext.allowPrivilegeEscalation",
            "allows privilege escalation; set it to false or leave it out",
        )
    if context.get("procMount") == "Unmasked" and not policy.allow_unmasked_proc_mount:
        yield Violation(f"{where}.securityContext.procMount", "Unmasked /proc; not allowed")
    added = _list(_map(context, "capabilities"), "add")
    if ANY not in policy.allowed_capabilities:
        for capability in added:
            if _capability(str(capability)) not in policy.allowed_capabilities:
                yield Violation(
                    f"{where}.securityContext.capabilities.add",
                    f"capability {capability!r} is beyond the allowed set",
                )


def _security_context(
    where: str, context: Mapping[str, Any], policy: SecurityPolicy, *, pod_level: bool
) -> Iterator[Violation]:
    if not policy.allow_unconfined:
        for key, what in (("seccompProfile", "seccomp"), ("appArmorProfile", "AppArmor")):
            if _map(context, key).get("type") == "Unconfined":
                yield Violation(f"{where}.{key}.type", f"{what} Unconfined; not allowed")
    selinux = _map(context, "seLinuxOptions")
    if selinux and not policy.allow_custom_selinux:
        if str(selinux.get("type") or "") not in BASELINE_SELINUX_TYPES:
            yield Violation(
                f"{where}.seLinuxOptions.type", f"SELinux type {selinux['type']!r}; not allowed"
            )
        for key in ("user", "role"):
            if selinux.get(key):
                yield Violation(f"{where}.seLinuxOptions.{key}", "custom SELinux; not allowed")
    if _map(context, "windowsOptions").get("hostProcess") and not policy.allow_host_process:
        yield Violation(f"{where}.windowsOptions.hostProcess", "Windows host process; not allowed")
    if pod_level and not policy.allow_unsafe_sysctls:
        for sysctl in _list(context, "sysctls"):
            name = sysctl.get("name") if isinstance(sysctl, Mapping) else None
            if not isinstance(name, str) or name not in SAFE_SYSCTLS:
                yield Violation(f"{where}.sysctls[{name}]", f"sysctl {name!r} is not a safe sysctl")


def _map(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    # The policy is a gate: odd shapes must be judged, not crash the controller.
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []
