"""Defaulting and validation of the built-in kinds, the part devcluster simulates."""

from __future__ import annotations

import json
import re
from typing import Any

from devcluster.errors import ApiError, FieldError, invalid
from devcluster.resources import (
    CONFIGMAPS,
    CRDS,
    EVENTS,
    EVENTS_V1,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    ResourceInfo,
    ResourceKey,
)
from devcluster.schema import compile_rules

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def validate_name(info: ResourceInfo, name: str) -> list[FieldError]:
    """Object names: DNS labels for namespaces, anything for Events, DNS subdomains for
    the rest."""
    if info.key in (EVENTS, EVENTS_V1):
        return []
    if info.key == NAMESPACES:
        if len(name) > 63:
            return [
                FieldError(
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "{name}": must be no more than 63 characters',
                )
            ]
        if not _DNS1123_LABEL.match(name):
            return [
                FieldError(
                    "FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {LABEL_MSG}'
                )
            ]
        return []
    if len(name) > 253:
        return [
            FieldError(
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": must be no more than 253 characters',
            )
        ]
    if not _DNS1123_SUBDOMAIN.match(name):
        return [
            FieldError(
                "FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {SUBDOMAIN_MSG}'
            )
        ]
    return []


_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
# The finalizers Kubernetes itself defines; any other needs a domain prefix.
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def qualified_name_errors(value: str) -> list[str]:
    """apimachinery's IsQualifiedName: an optional DNS subdomain prefix and '/', then a
    name of at most 63 characters, its messages word for word."""
    parts = value.split("/")
    errors: list[str] = []
    if len(parts) > 2:
        return [
            "a valid label key " + _QUALIFIED_MSG + " with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix.encode()) > 253:
                errors.append("prefix part must be no more than 253 bytes")
            if not _DNS1123_SUBDOMAIN.match(prefix):
                errors.append("prefix part " + SUBDOMAIN_MSG)
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not _QUALIFIED_NAME.match(name):
        errors.append("name part " + _QUALIFIED_MSG)
    return errors


def validate_generate_name(info: ResourceInfo, prefix: Any) -> list[FieldError]:
    """A generateName is validated as a name whose trailing dash is allowed (maskTrailingDash),
    whether or not a name was given."""
    if not prefix or not isinstance(prefix, str) or info.key in (EVENTS, EVENTS_V1):
        return []
    # maskTrailingDash, quirk included: the last two characters become one "a".
    masked = prefix[:-2] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix
    return [
        FieldError(
            e.kind, "metadata.generateName", e.message.replace(f'"{masked}"', f'"{prefix}"', 1)
        )
        for e in validate_name(info, masked)
    ]


def validate_labels(meta: dict[str, Any]) -> list[FieldError]:
    errors = []
    for key, value in (meta.get("labels") or {}).items():
        for message in qualified_name_errors(str(key)):
            errors.append(
                FieldError(
                    "FieldValueInvalid", "metadata.labels", f'Invalid value: "{key}": {message}'
                )
            )
        value = value if isinstance(value, str) else str(value)
        messages = ["must be no more than 63 bytes"] if len(value.encode()) > 63 else []
        if not _LABEL_VALUE.match(value):
            messages.append(_LABEL_VALUE_MSG)
        for message in messages:
            errors.append(
                FieldError(
                    "FieldValueInvalid", "metadata.labels", f'Invalid value: "{value}": {message}'
                )
            )
    return errors


def validate_finalizers(meta: dict[str, Any], *, custom: bool = False) -> list[FieldError]:
    """ValidateFinalizers: qualified names; on a built-in kind a name without a domain
    prefix only if Kubernetes defines it (a custom resource's only draws a warning)."""
    errors = []
    finalizers = meta.get("finalizers") or []
    for i, finalizer in enumerate(finalizers):
        for message in qualified_name_errors(finalizer):
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    "metadata.finalizers",
                    f'Invalid value: "{finalizer}": {message}',
                )
            )
        if not custom and "/" not in finalizer and finalizer not in STANDARD_FINALIZERS:
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    f"metadata.finalizers[{i}]",
                    f'Invalid value: "{finalizer}": name is neither a standard finalizer name '
                    "nor is it fully qualified",
                )
            )
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "metadata.finalizers",
                f"Invalid value: {json.dumps(finalizers, separators=(',', ':'))}: "
                "finalizer orphan and foregroundDeletion cannot be both set",
            )
        )
    return errors


def finalizer_warnings(meta: dict[str, Any]) -> list[str]:
    """The warning a custom resource's finalizer without a domain prefix draws."""
    return [
        f'metadata.finalizers: "{f}": prefer a domain-qualified finalizer name to avoid '
        "accidental conflicts with other finalizer writers"
        for f in meta.get("finalizers") or []
        if isinstance(f, str) and "/" not in f and f not in STANDARD_FINALIZERS
    ]


def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _default_container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if c.get("image"):
        c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
    resources = c.setdefault("resources", {})
    limits = resources.get("limits") if isinstance(resources, dict) else None
    if isinstance(limits, dict) and limits:
        # SetDefaults_Pod: a resource with a limit and no request requests its limit.
        resources["requests"] = {**limits, **(resources.get("requests") or {})}


def default_pod(pod: dict[str, Any]) -> None:
    """What the apiserver's defaulting adds to a new pod."""
    spec = pod["spec"] = pod.get("spec") or {}
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            if isinstance(c, dict):
                _default_container(c)
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: dict[str, Any]) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get("cpu")
        and (r.get("limits") or {}).get("memory")
        and (r.get("requests") or r.get("limits")) == r.get("limits")
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"


# apimachinery's TotalAnnotationSizeLimitB.
ANNOTATIONS_MAX_BYTES = 256 * 1024


def validate_pod(pod: dict[str, Any]) -> list[FieldError]:
    """The pod checks that matter to a controller that builds pods."""
    errors: list[FieldError] = []
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return [FieldError("FieldValueRequired", "spec", "Required value")]
    containers = spec.get("containers")
    if not containers:
        errors.append(FieldError("FieldValueRequired", "spec.containers", "Required value"))
    volume_names = {v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict)}
    for i, v in enumerate(spec.get("volumes") or []):
        if not isinstance(v, dict) or not v.get("name"):
            errors.append(
                FieldError("FieldValueRequired", f"spec.volumes[{i}].name", "Required value")
            )
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            path = f"spec.{group}[{i}]"
            if not isinstance(c, dict):
                errors.append(
                    FieldError("FieldValueInvalid", path, "Invalid value: must be an object")
                )
                continue
            name = c.get("name")
            if not name:
                errors.append(FieldError("FieldValueRequired", f"{path}.name", "Required value"))
            elif not _DNS1123_LABEL.match(name) or len(name) > 63:
                errors.append(
                    FieldError(
                        "FieldValueInvalid", f"{path}.name", f'Invalid value: "{name}": {LABEL_MSG}'
                    )
                )
            elif name in seen:
                errors.append(
                    FieldError("FieldValueDuplicate", f"{path}.name", f'Duplicate value: "{name}"')
                )
            if name:
                seen.add(name)
            if not c.get("image"):
                errors.append(FieldError("FieldValueRequired", f"{path}.image", "Required value"))
            for j, m in enumerate(c.get("volumeMounts") or []):
                if isinstance(m, dict) and m.get("name") not in volume_names:
                    errors.append(
                        FieldError(
                            "FieldValueNotFound",
                            f"{path}.volumeMounts[{j}].name",
                            f'Not found: "{m.get("name")}"',
                        )
                    )
            for j, e in enumerate(c.get("env") or []):
                if isinstance(e, dict) and not e.get("name"):
                    errors.append(
                        FieldError("FieldValueRequired", f"{path}.env[{j}].name", "Required value")
                    )
            policy = c.get("imagePullPolicy")
            if policy not in (None, "Always", "IfNotPresent", "Never"):
                errors.append(
                    FieldError(
                        "FieldValueNotSupported",
                        f"{path}.imagePullPolicy",
                        f'Unsupported value: "{policy}": supported values: '
                        '"Always", "IfNotPresent", "Never"',
                    )
                )
    policy = spec.get("restartPolicy")
    if policy not in (None, "Always", "OnFailure", "Never"):
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                "spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
            )
        )
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        errors.append(
            FieldError(
                "FieldValueTooLong",
                "metadata.annotations",
                f"Too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes",
            )
        )
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or not 1 <= deadline <= 2147483647):
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "spec.activeDeadlineSeconds",
                f"Invalid value: {deadline}: must be between 1 and 2147483647, inclusive",
            )
        )
    return errors


_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "schedulingGates")


def _toleration(t: Any) -> Any:
    # Go compares Toleration structs, where an absent field and its zero value are equal;
    # tolerationSeconds is the part an update may change.
    if not isinstance(t, dict):
        return t
    return {k: v for k, v in t.items() if v not in (None, "") and k != "tolerationSeconds"}


def _pod_update_fields(new_spec: dict[str, Any], old_spec: dict[str, Any]) -> list[FieldError]:
    """ValidatePodUpdate's rules for the fields that may change: activeDeadlineSeconds only
    shrinks and is never removed; tolerations are only added (an existing one may change
    its tolerationSeconds alone)."""
    deadline, before = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if deadline is None and before is not None:
        return [
            FieldError(
                "FieldValueInvalid",
                "spec.activeDeadlineSeconds",
                "Invalid value: null: must not update from a positive integer to nil value",
            )
        ]
    if (
        isinstance(deadline, int)
        and isinstance(before, int)
        and 0 <= deadline <= 2147483647
        and deadline > before
    ):
        return [
            FieldError(
                "FieldValueInvalid",
                "spec.activeDeadlineSeconds",
                f"Invalid value: {deadline}: must be less than or equal to previous value",
            )
        ]
    new_tolerations = new_spec.get("tolerations") or []
    for kept in old_spec.get("tolerations") or []:
        if not any(_toleration(kept) == _toleration(t) for t in new_tolerations):
            return [
                FieldError(
                    "FieldValueForbidden",
                    "spec.tolerations",
                    "Forbidden: existing toleration can not be modified except its "
                    "tolerationSeconds",
                )
            ]
    return []


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Pod specs are immutable but for images, deadline and tolerations; the new pod must
    also pass the create-time checks, as kube-apiserver validates it whole again."""
    errors = validate_pod(new)
    if errors:
        return errors
    errors = _pod_update_fields(new.get("spec") or {}, old.get("spec") or {})
    if errors:
        return errors
    ns, os_ = dict(new.get("spec") or {}), dict(old.get("spec") or {})
    # nodeName is guarded by the store: only the binding subresource may set it.
    for key in (*_POD_MUTABLE, "nodeName"):
        ns.pop(key, None)
        os_.pop(key, None)
    for group in ("containers", "initContainers"):
        for specs in (ns, os_):
            if group in specs:
                specs[group] = [{k: v for k, v in c.items() if k != "image"} for c in specs[group]]
    if ns != os_:
        return [pod_spec_forbidden()]
    return []


def pod_spec_forbidden() -> FieldError:
    """kube-apiserver's refusal of a pod spec change (its message then shows a diff of the
    Go structs, left out here)."""
    return FieldError(
        "FieldValueForbidden",
        "spec",
        "Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,"
        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
        "to existing tolerations),`spec.terminationGracePeriodSeconds` "
        "(allow it to be set to 1 if it was previously negative)",
    )


def _crd_shape_errors(names: Any, versions: Any) -> list[FieldError]:
    # What the Go decoder would refuse before validation even starts.
    if not isinstance(names, dict):
        return [FieldError("FieldValueTypeInvalid", "spec.names", "Invalid value: not an object")]
    for field in ("plural", "kind", "singular", "listKind"):
        if not isinstance(names.get(field, ""), str):
            return [
                FieldError(
                    "FieldValueTypeInvalid", f"spec.names.{field}", "Invalid value: not a string"
                )
            ]
    if not isinstance(versions, list):
        return [FieldError("FieldValueTypeInvalid", "spec.versions", "Invalid value: not a list")]
    for i, v in enumerate(versions):
        schema = v.get("schema") if isinstance(v, dict) else None
        if (
            not isinstance(v, dict)
            or not isinstance(v.get("name"), str)
            or not isinstance(schema, (dict, type(None)))
            or not isinstance((schema or {}).get("openAPIV3Schema", {}), dict)
        ):
            return [
                FieldError(
                    "FieldValueInvalid",
                    f"spec.versions[{i}]",
                    "Invalid value: needs a name and an object schema",
                )
            ]
    return []


def validate_crd(crd: dict[str, Any]) -> list[FieldError]:
    """The CRD checks that keep a broken CRD from being served."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = spec.get("versions") or []
    if not isinstance(spec.get("group", ""), str):
        return [FieldError("FieldValueTypeInvalid", "spec.group", "Invalid value: not a string")]
    shape_errors = _crd_shape_errors(names, versions)
    if shape_errors:
        return shape_errors
    errors: list[FieldError] = []
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    for field, value in (
        ("spec.group", group),
        ("spec.names.plural", plural),
        ("spec.names.kind", kind),
    ):
        if not value:
            errors.append(FieldError("FieldValueRequired", field, "Required value"))
    name = (crd.get("metadata") or {}).get("name")
    if group and plural and name != f"{plural}.{group}":
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: '
                '"Cluster", "Namespaced"',
            )
        )
    if not versions:
        errors.append(FieldError("FieldValueRequired", "spec.versions", "Required value"))
    if versions and sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    for i, v in enumerate(versions):
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errors.append(
                FieldError(
                    "FieldValueRequired",
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "Required value: schemas are required",
                )
            )
            continue
        for e in compile_rules(schema):
            e.field = e.field.replace("spec.validation.", f"spec.versions[{i}].schema.", 1)
            errors.append(e)
    return errors


def crd_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The status the apiextensions controllers converge to, at once."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind')}List")
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    old = crd.get("status") or {}
    stored = list(old.get("storedVersions") or [])
    for v in storage:
        if v not in stored:
            stored.append(v)

    def cond(kind: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True",
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }

    return {
        "acceptedNames": names,
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    }


def default_crd(crd: dict[str, Any]) -> None:
    spec: dict[str, Any] = crd.get("spec") or {}
    crd["spec"] = spec
    names: Any = spec.get("names")
    if not isinstance(names, dict):
        names = spec["names"] = {}
    if isinstance(names.get("kind"), str) and names["kind"]:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    versions = spec.get("versions")
    for v in versions if isinstance(versions, list) else []:
        if isinstance(v, dict) and not v.get("additionalPrinterColumns"):
            v.pop("additionalPrinterColumns", None)


def default_namespace(ns: dict[str, Any]) -> None:
    ns["spec"] = ns.get("spec") or {}
    ns["spec"].setdefault("finalizers", ["kubernetes"])
    ns["status"] = {"phase": "Active"}
    labels = ns["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = ns["metadata"]["name"]


def prepare_create(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """Defaults for a new object of a built-in kind."""
    if info.key == PODS:
        default_pod(obj)
    elif info.key == NAMESPACES:
        default_namespace(obj)
    elif info.key == CRDS:
        default_crd(obj)
    elif info.key == NODES:
        taint_new_node(obj)


def taint_new_node(node: dict[str, Any]) -> None:
    """kube-apiserver's NodeTaint admission (on by default): a new Node is not-ready until
    the node lifecycle controller (or devcluster's kubelet) sees it report Ready."""
    spec = node.setdefault("spec", {})
    taints = list(spec.get("taints") or [])
    if not any(t.get("key") == "node.kubernetes.io/not-ready" for t in taints):
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    spec["taints"] = taints


def validate(
    info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
) -> list[FieldError]:
    """Kind-specific validation of a create (old is None) or an update."""
    if info.key == PODS:
        return validate_pod(obj) if old is None else validate_pod_update(obj, old)
    if info.key == CRDS:
        return validate_crd(obj)
    return []


_META_STR = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "selfLink",
)
_META_INT = ("generation", "deletionGracePeriodSeconds")
# Fields of built-in kinds whose JSON type the Go decoder would insist on.
_BODY_TYPES: dict[ResourceKey, dict[str, str]] = {
    CONFIGMAPS: {"data": "map", "binaryData": "map", "immutable": "bool"},
    SECRETS: {"data": "map", "stringData": "map", "type": "str", "immutable": "bool"},
    PODS: {"spec": "object", "status": "object"},
    NAMESPACES: {"spec": "object", "status": "object"},
    NODES: {"spec": "object", "status": "object"},
    CRDS: {"spec": "object", "status": "object"},
}
_GO_TYPES = {
    "str": "string",
    "int": "int64",
    "bool": "bool",
    "object": "struct",
    "map": "map[string]string",
    "list": "[]string",
}


def _type_ok(value: Any, kind: str) -> bool:
    if value is None:
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "map":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _decode_error(info: ResourceInfo, field: str, value: Any, kind: str) -> ApiError:
    got = type(value).__name__.replace("dict", "object").replace("str", "string")
    return ApiError(
        400,
        f"json: cannot unmarshal {got} into Go struct field {info.kind}.{field} "
        f"of type {_GO_TYPES[kind]}",
    )


def check_types(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """The JSON types the apiserver's decoder enforces before any validation (400)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise _decode_error(info, "metadata", meta, "object")
    checks = [(f, "str") for f in _META_STR] + [(f, "int") for f in _META_INT]
    checks += [("labels", "map"), ("annotations", "map"), ("finalizers", "list")]
    for field, kind in checks:
        if not _type_ok(meta.get(field), kind):
            raise _decode_error(info, f"metadata.{field}", meta[field], kind)
    refs = meta.get("ownerReferences")
    if refs is not None:
        if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
            raise _decode_error(info, "metadata.ownerReferences", refs, "list")
        for i, ref in enumerate(refs):
            for field in ("apiVersion", "kind", "name", "uid"):
                if not isinstance(ref.get(field), str) or not ref[field]:
                    raise invalid(
                        info.kind,
                        info.key.group,
                        str(meta.get("name", "")),
                        [
                            FieldError(
                                "FieldValueRequired",
                                f"metadata.ownerReferences[{i}].{field}",
                                "Required value",
                            )
                        ],
                    )
    for field, kind in _BODY_TYPES.get(info.key, {}).items():
        if not _type_ok(obj.get(field), kind):
            raise _decode_error(info, field, obj[field], kind)
