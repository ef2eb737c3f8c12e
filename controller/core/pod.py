"""Build the pod of one TaskRun attempt, following KubernetesPodOperator's rules.

The merge functions mirror ``PodGenerator.reconcile_pods`` and friends of
apache-airflow-providers-cncf-kubernetes 10.25 on camelCase dicts instead of client models.
Deliberate differences are listed in docs/pod-building.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from controller.core import naming
from controller.core.podsettings import PodSettings
from taskrun.api import (
    ANNOTATION_UID,
    API_VERSION,
    DEFAULT_BASE_CONTAINER_NAME,
    INLINE_RESULT_MAX_BYTES,
    KIND,
    XCOM_INLINE_MAX_ENV,
    XCOM_MOUNT_PATH,
    XCOM_RESULT_PATH,
    XCOM_SIDECAR_NAME,
    XCOM_VOLUME_NAME,
)

Obj = dict[str, Any]

TERMINATION_LOG = "/dev/termination-log"
# The kubelet also shares 12 KiB of termination messages among all of a pod's containers,
# so with four or more containers an inline result would arrive cut: the pod builder
# tells the sidecar its real budget through this variable.
POD_TERMINATION_MESSAGES_BYTES = 12 * 1024

# What the native sidecar writes to its termination message (docs/architecture.md, "Results").
HANDOVER_NONE = "none"
HANDOVER_INLINE = "inline:"
HANDOVER_LOG = "log:"
HANDOVER_UNREADABLE = "unreadable:"
SHA256_HEX_CHARS = 64

# KPO's exec-mode sidecar command (utils/xcom_sidecar.py), kept byte for byte.
KPO_XCOM_CMD = 'trap "exit 0" INT; while true; do sleep 1; done;'
XCOM_SIDECAR_RESOURCES: Obj = {"requests": {"cpu": "1m", "memory": "10Mi"}}
# `nobody`: the sidecar's user when the base container must run as non-root and neither it
# nor the pod names a user (docs/security.md, "The result sidecar").
SIDECAR_NON_ROOT_UID = 65534

# The native sidecar's hand-over (docs/architecture.md, "Results"). It sleeps in the
# background so `wait` returns as soon as SIGTERM arrives; the sleep must not hold stdout,
# which carries large results; a second SIGTERM must not start a second hand-over. The
# paths are overridable only so that tests can run it outside a pod.
NATIVE_XCOM_SCRIPT = f"""\
result="${{TASKRUN_XCOM_RESULT_FILE:-{XCOM_RESULT_PATH}}}"
message="${{TASKRUN_XCOM_TERMINATION_LOG:-{TERMINATION_LOG}}}"
hand_over() {{
  trap '' TERM
  if [ -n "$!" ]; then kill "$!" 2>/dev/null; fi
  if [ ! -f "$result" ] || [ ! -s "$result" ]; then
    printf '{HANDOVER_NONE}' > "$message"
    exit 0
  fi
  if [ ! -r "$result" ]; then
    printf '{HANDOVER_UNREADABLE}%s' "$(id -u)" > "$message"
    exit 0
  fi
  size=$(wc -c < "$result")
  size=$((size))
  sum=$(sha256sum < "$result")
  sum="${{sum%% *}}"
  if [ "$size" -le "${{{XCOM_INLINE_MAX_ENV}:-{INLINE_RESULT_MAX_BYTES}}}" ]; then
    {{ printf '{HANDOVER_INLINE}%s:%s:' "$size" "$sum"; cat "$result"; }} > "$message"
  else
    cat "$result"
    printf '{HANDOVER_LOG}%s:%s' "$size" "$sum" > "$message"
  fi
  exit 0
}}
trap hand_over TERM
while :; do
  sleep 3600 > /dev/null 2>&1 &
  wait "$!"
done
"""

# Set by the API server; a template copied from `kubectl get pod -o yaml` carries them and a
# create with any of them is refused.
_SERVER_SET_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
)


class SpecError(ValueError):
    """A spec the API server may accept but that cannot work; ends the TaskRun InvalidSpec."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def build_pod(taskrun: Mapping[str, Any], attempt: int, settings: PodSettings | None = None) -> Obj:
    """The v1 Pod manifest for ``attempt`` (from 1) of ``taskrun`` (the whole object, camelCase).

    Raises SpecError for specs that cannot produce a working pod.
    """
    settings = settings or PodSettings()
    meta = taskrun.get("metadata") or {}
    spec = taskrun.get("spec") or {}
    name, namespace, uid = meta.get("name"), meta.get("namespace"), meta.get("uid")
    if not name or not namespace or not uid:
        raise ValueError("taskrun.metadata needs name, namespace and uid")
    if not spec.get("image"):
        raise SpecError("spec.image", "an image is required")

    template = _template_pod(spec.get("podTemplate"))
    pod = reconcile_pods(template, _operator_pod(spec, namespace))

    for index, secret in enumerate(spec.get("secrets") or []):
        _attach_secret(pod, secret, index)
    if spec.get("doXcomPush"):
        _add_xcom_sidecar(pod, settings)

    _claim(pod, meta, attempt)
    _check(pod, spec)
    return _prune_none(pod)


def base_container_name(spec: Mapping[str, Any]) -> str:
    """The name of the container whose exit code and logs are the task's."""
    return str(spec.get("baseContainerName") or DEFAULT_BASE_CONTAINER_NAME)


# --- the operator's own pod (KPO's build_pod_request_obj before the merge) ---------------


def _operator_pod(spec: Mapping[str, Any], namespace: str) -> Obj:
    env = [*(spec.get("envVars") or []), *(spec.get("podRuntimeInfoEnvs") or [])]
    env_from = [
        *(spec.get("envFrom") or []),
        *({"configMapRef": {"name": name}} for name in spec.get("configmaps") or []),
    ]
    container = {
        "image": spec["image"],
        "name": base_container_name(spec),
        "command": list(spec.get("cmds") or []),
        "ports": list(spec.get("ports") or []),
        "imagePullPolicy": spec.get("imagePullPolicy"),
        "resources": spec.get("containerResources"),
        "volumeMounts": list(spec.get("volumeMounts") or []),
        "args": list(spec.get("arguments") or []),
        "env": env,
        "envFrom": env_from,
        "securityContext": spec.get("containerSecurityContext"),
        "terminationMessagePolicy": spec.get("terminationMessagePolicy") or "File",
    }
    labels = {k: "" if v is None else v for k, v in (spec.get("labels") or {}).items()}
    pod_spec = {
        "runtimeClassName": spec.get("runtimeClassName"),
        "nodeSelector": spec.get("nodeSelector") or {},
        "affinity": spec.get("affinity") or {},
        "tolerations": list(spec.get("tolerations") or []),
        "initContainers": list(spec.get("initContainers") or []),
        "hostAliases": spec.get("hostAliases"),
        "containers": [container],
        "imagePullSecrets": list(spec.get("imagePullSecrets") or []),
        "serviceAccountName": spec.get("serviceAccountName"),
        "automountServiceAccountToken": spec.get("automountServiceAccountToken"),
        "hostNetwork": bool(spec.get("hostNetwork")),
        "hostname": spec.get("hostname"),
        "subdomain": spec.get("subdomain"),
        "securityContext": spec.get("securityContext") or {},
        "dnsPolicy": spec.get("dnsPolicy"),
        "dnsConfig": spec.get("dnsConfig"),
        "schedulerName": spec.get("schedulerName"),
        "restartPolicy": "Never",
        "priorityClassName": spec.get("priorityClassName"),
        "volumes": list(spec.get("volumes") or []),
        "activeDeadlineSeconds": spec.get("activeDeadlineSeconds"),
        "terminationGracePeriodSeconds": spec.get("terminationGracePeriod"),
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": namespace,
            "labels": labels,
            "annotations": dict(spec.get("annotations") or {}),
        },
        "spec": pod_spec,
    }
    return _prune_none(copy.deepcopy(pod))


def _template_pod(template: Mapping[str, Any] | None) -> Obj:
    if not template:
        return {"metadata": {}}
    if not isinstance(template, Mapping):
        raise SpecError("spec.podTemplate", "must be an object with metadata and spec")
    pod = _prune_none(copy.deepcopy(dict(template)))
    for key in ("metadata", "spec"):
        if not isinstance(pod.get(key) or {}, Mapping):
            raise SpecError(f"spec.podTemplate.{key}", "must be an object")
    for field in ("containers", "initContainers", "volumes"):
        items = (pod.get("spec") or {}).get(field) or []
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise SpecError(f"spec.podTemplate.spec.{field}", "must be a list of objects")
        for i, item in enumerate(items):
            _check_template_item(item, f"spec.podTemplate.spec.{field}[{i}]")
    metadata = pod.setdefault("metadata", {}) or {}
    for field in ("labels", "annotations"):
        if not isinstance(metadata.get(field) or {}, Mapping):
            raise SpecError(f"spec.podTemplate.metadata.{field}", "must be a map of strings")
    for key in _SERVER_SET_METADATA:
        metadata.pop(key, None)
    pod["metadata"] = metadata
    # A template is a pod template, not a pod: a status would be sent back to the API server.
    pod.pop("status", None)
    return pod


_CONTAINER_LISTS = ("command", "args", "env", "envFrom", "ports", "volumeMounts", "volumeDevices")


def _check_template_item(item: Mapping[str, Any], where: str) -> None:
    # The CRD keeps podTemplate schemaless; shapes the merge relies on are checked here.
    if "name" in item and not isinstance(item["name"], str):
        raise SpecError(f"{where}.name", "must be a string")
    for field in _CONTAINER_LISTS:
        value = item.get(field)
        if value is not None and not isinstance(value, list):
            raise SpecError(f"{where}.{field}", f"must be a list, got {type(value).__name__}")
    if not all(isinstance(m, Mapping) for m in item.get("volumeMounts") or []):
        raise SpecError(f"{where}.volumeMounts", "must be a list of objects")


# --- KPO's merge rules (pod_generator.py) ----------------------------------------------------


def merge_objects(base: Any, client: Any) -> Any:
    """KPO's ``merge_objects`` for Kubernetes objects: client fields win unless falsy."""
    if not base:
        return client
    if not client:
        return base
    merged = copy.deepcopy(client)
    for key, value in base.items():
        if not client.get(key) and value is not None:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_maps(base: Any, client: Any) -> Any:
    """KPO's ``merge_objects`` for plain maps (labels, annotations): ``dict.update``."""
    if not base:
        return client
    if not client:
        return base
    return {**base, **client}


def extend_object_field(base: Mapping[str, Any], client: Obj, field: str, where: str) -> Obj:
    """KPO's ``extend_object_field``: the list ``field`` of base, then of client."""
    merged = copy.deepcopy(client)
    base_list, client_list = base.get(field), client.get(field)
    for value in (base_list, client_list):
        if value is not None and not isinstance(value, list):
            raise SpecError(f"{where}.{field}", f"must be a list, got {type(value).__name__}")
    if not base_list:
        return merged
    if not client_list:
        merged[field] = copy.deepcopy(base_list)
        return merged
    merged[field] = copy.deepcopy(base_list) + merged[field]
    return merged


_APPENDED_CONTAINER_LISTS = ("volumeMounts", "env", "envFrom", "ports", "volumeDevices")


def _merge_container(base: Mapping[str, Any], client: Obj, where: str) -> Obj:
    for field in _APPENDED_CONTAINER_LISTS:
        client = extend_object_field(base, client, field, where)
    merged: Obj = merge_objects(base, client)
    return merged


def reconcile_containers(base: list[Obj] | None, client: list[Obj] | None) -> list[Obj]:
    """KPO's ``reconcile_containers``: merged by position, client on top."""
    if not base:
        return client or []
    if not client:
        return base
    merged = [
        _merge_container(b, c, f"spec.podTemplate.spec.containers[{i}]")
        for i, (b, c) in enumerate(zip(base, client, strict=False))
    ]
    longer = base if len(base) > len(client) else client
    return merged + longer[len(merged) :]


def reconcile_init_containers(base: list[Obj] | None, client: list[Obj] | None) -> list[Obj]:
    """KPO's ``reconcile_init_containers``: merged by name, unmatched client ones appended."""
    if not base:
        return client or []
    if not client:
        return base
    by_name = {c.get("name"): c for c in client}
    merged, matched = [], set()
    for i, container in enumerate(base):
        name = container.get("name")
        if name in by_name:
            where = f"spec.podTemplate.spec.initContainers[{i}]"
            merged.append(_merge_container(container, by_name[name], where))
            matched.add(name)
        else:
            merged.append(container)
    merged.extend(c for c in client if c.get("name") not in matched)
    return merged


def reconcile_specs(base: Obj | None, client: Obj | None) -> Obj | None:
    """KPO's ``reconcile_specs``."""
    if base and not client:
        return base
    if not base or not client:
        return client
    client = dict(client)
    client["containers"] = reconcile_containers(base.get("containers"), client.get("containers"))
    where = "spec.podTemplate.spec"
    merged = extend_object_field(base, client, "initContainers", where)
    if base.get("initContainers") and client.get("initContainers"):
        merged["initContainers"] = reconcile_init_containers(
            base["initContainers"], client["initContainers"]
        )
    merged = extend_object_field(base, merged, "volumes", where)
    result: Obj = merge_objects(base, merged)
    return result


def reconcile_metadata(base: Obj | None, client: Obj | None) -> Obj | None:
    """KPO's ``reconcile_metadata``: labels and annotations merged as maps."""
    if base and not client:
        return base
    if not base or not client:
        return client
    client = dict(client)
    client["labels"] = merge_maps(base.get("labels"), client.get("labels"))
    client["annotations"] = merge_maps(base.get("annotations"), client.get("annotations"))
    result: Obj = merge_objects(base, client)
    return result


def reconcile_pods(base: Obj, client: Obj) -> Obj:
    """KPO's ``reconcile_pods``: ``client`` (the operator's pod) on top of ``base``."""
    merged = copy.deepcopy(client)
    merged["spec"] = reconcile_specs(base.get("spec"), merged.get("spec"))
    merged["metadata"] = reconcile_metadata(base.get("metadata"), merged.get("metadata"))
    result: Obj = merge_objects(base, merged)
    return result


# --- after the merge: secrets and the xcom sidecar ------------------------------------------


def secret_volume_name(secret: Mapping[str, Any], index: int) -> str:
    """``secretvol<uuid>`` like KPO, but the uuid is derived from the secret spec.

    KPO draws uuid4, which would give every build of the same TaskRun a different pod.
    """
    # Pruned so that a spec with explicit nulls (a model dump) names the volume alike.
    canonical = json.dumps([index, _prune_none(dict(secret))], sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return f"secretvol{uuid.UUID(bytes=digest[:16], version=4)}"


def _attach_secret(pod: Obj, secret: Mapping[str, Any], index: int) -> None:
    where = f"spec.secrets[{index}]"
    deploy_type = secret.get("deployType")
    target, name, key = secret.get("deployTarget"), secret.get("secret"), secret.get("key")
    if deploy_type not in ("env", "volume"):
        raise SpecError(f"{where}.deployType", f"must be env or volume, got {deploy_type!r}")
    if not name:
        raise SpecError(f"{where}.secret", "the name of the Secret is required")
    if key is not None and target is None:
        raise SpecError(f"{where}.deployTarget", "is required when key is set")
    base = pod["spec"]["containers"][0]
    if deploy_type == "volume":
        if not target:
            raise SpecError(f"{where}.deployTarget", "a volume secret needs the mount path")
        volume_name = secret_volume_name(secret, index)
        source: Obj = {"secretName": name}
        if secret.get("items"):
            source["items"] = copy.deepcopy(secret["items"])
        pod["spec"].setdefault("volumes", []).append({"name": volume_name, "secret": source})
        base.setdefault("volumeMounts", []).append(
            {"mountPath": target, "name": volume_name, "readOnly": True}
        )
    elif key is not None:
        ref = {"secretKeyRef": {"name": name, "key": key}}
        base.setdefault("env", []).append({"name": str(target).upper(), "valueFrom": ref})
    else:
        base.setdefault("envFrom", []).append({"secretRef": {"name": name}})


def _xcom_mount() -> Obj:
    return {"name": XCOM_VOLUME_NAME, "mountPath": XCOM_MOUNT_PATH}


def sidecar_security_context(pod_spec: Mapping[str, Any]) -> Obj | None:
    """The result sidecar's securityContext, or None to run it as KPO does (no context).

    When the base container must run as non-root (its ``runAsNonRoot``, else the pod's, is
    true, as the Restricted Pod Security Standard demands), the sidecar gets the Restricted
    container fields and runs as the base container's user, so that it can read a result
    file the task wrote mode 0600. Otherwise KPO's sidecar is kept: a root sidecar reads
    whatever the task wrote, as users of KPO rely on.
    """
    pod_context = _mapping(pod_spec.get("securityContext"))
    containers = pod_spec.get("containers") or [{}]
    base_context = _mapping(_mapping(containers[0]).get("securityContext"))
    run_as_non_root = base_context.get("runAsNonRoot")
    if run_as_non_root is None:
        run_as_non_root = pod_context.get("runAsNonRoot")
    if run_as_non_root is not True:
        return None
    context: Obj = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        # The sidecar writes only to its termination message and reads the xcom volume.
        "readOnlyRootFilesystem": True,
    }
    # The pod's user and group apply to the sidecar unless it names its own; the image's
    # user is unknown here (alpine's is root, which runAsNonRoot refuses), hence the default.
    for field in ("runAsUser", "runAsGroup"):
        if base_context.get(field) is not None:
            context[field] = base_context[field]
    if "runAsUser" not in context and pod_context.get("runAsUser") is None:
        context["runAsUser"] = SIDECAR_NON_ROOT_UID
    # A pod-wide profile Restricted accepts (a Localhost one, say) is the user's choice and is
    # inherited; Unconfined is not, and the sidecar needs no more than the runtime's default.
    if _mapping(pod_context.get("seccompProfile")).get("type") not in (
        "RuntimeDefault",
        "Localhost",
    ):
        context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def _mapping(value: Any) -> Mapping[str, Any]:
    # A template is schemaless: a malformed securityContext is the API server's to refuse
    # (InvalidSpec, with its words), not a reason for the pod builder to crash.
    return value if isinstance(value, Mapping) else {}


def xcom_sidecar(settings: PodSettings, pod_spec: Mapping[str, Any] | None = None) -> Obj:
    """The result sidecar container for ``settings.xcom_mode`` in the pod of ``pod_spec``."""
    script = NATIVE_XCOM_SCRIPT if settings.xcom_mode == "native" else KPO_XCOM_CMD
    sidecar: Obj = {
        "name": XCOM_SIDECAR_NAME,
        "command": ["sh", "-c", script],
        "image": settings.xcom_sidecar_image,
        "volumeMounts": [_xcom_mount()],
        "resources": copy.deepcopy(settings.xcom_sidecar_resources or XCOM_SIDECAR_RESOURCES),
    }
    if settings.xcom_sidecar_security_context is not None:
        sidecar["securityContext"] = copy.deepcopy(settings.xcom_sidecar_security_context)
    elif pod_spec is not None:
        context = sidecar_security_context(pod_spec)
        if context is not None:
            sidecar["securityContext"] = context
    if settings.xcom_mode == "native":
        sidecar["restartPolicy"] = "Always"
        sidecar["terminationMessagePath"] = TERMINATION_LOG
        sidecar["terminationMessagePolicy"] = "File"
    return sidecar


def inline_header_bytes(size: int) -> int:
    """Bytes of ``inline:<size>:<sha256>:`` before an inline result of ``size`` bytes."""
    return len(HANDOVER_INLINE) + len(str(size)) + 1 + SHA256_HEX_CHARS + 1


def inline_result_limit(containers: int) -> int:
    """The largest result that survives the kubelet's termination-message caps inline,
    its header included."""
    per_container = min(4096, POD_TERMINATION_MESSAGES_BYTES // max(containers, 1))
    # The size's digits are counted at the budget's own width first (a result is never
    # longer), then one byte is won back where the size has a digit fewer.
    limit = per_container - inline_header_bytes(per_container)
    while inline_header_bytes(limit + 1) + limit + 1 <= per_container:
        limit += 1
    return max(0, min(INLINE_RESULT_MAX_BYTES, limit))


def _add_xcom_sidecar(pod: Obj, settings: PodSettings) -> None:
    spec = pod["spec"]
    spec["volumes"] = [{"name": XCOM_VOLUME_NAME, "emptyDir": {}}, *(spec.get("volumes") or [])]
    base = spec["containers"][0]
    base["volumeMounts"] = [_xcom_mount(), *(base.get("volumeMounts") or [])]
    if settings.xcom_mode == "native":
        # Last, so the user's init containers have finished before the sidecar starts.
        sidecar = xcom_sidecar(settings, spec)
        spec["initContainers"] = [*(spec.get("initContainers") or []), sidecar]
        limit = inline_result_limit(len(spec["initContainers"]) + len(spec["containers"]))
        sidecar["env"] = [{"name": XCOM_INLINE_MAX_ENV, "value": str(limit)}]
    else:
        spec["containers"].append(xcom_sidecar(settings, spec))


# --- what the controller owns ---------------------------------------------------------------


def owner_reference(meta: Mapping[str, Any]) -> Obj:
    """The controller ownerReference from a pod to its TaskRun."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _claim(pod: Obj, meta: Mapping[str, Any], attempt: int) -> None:
    metadata = pod.setdefault("metadata", {}) or {}
    pod["metadata"] = metadata
    metadata["name"] = naming.pod_name(meta["name"], attempt)
    metadata["namespace"] = meta["namespace"]
    metadata.pop("generateName", None)
    # Ours go last so a user label cannot detach the pod from its TaskRun.
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        **naming.pod_labels(meta["name"], attempt),
    }
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        ANNOTATION_UID: meta["uid"],
    }
    refs = metadata.get("ownerReferences") or []
    if not isinstance(refs, list):
        raise SpecError("spec.podTemplate.metadata.ownerReferences", "must be a list")
    for i, ref in enumerate(refs):
        if isinstance(ref, Mapping) and ref.get("controller"):
            raise SpecError(
                f"spec.podTemplate.metadata.ownerReferences[{i}]",
                "a pod has one controller, the TaskRun; remove controller: true",
            )
    metadata["ownerReferences"] = [*refs, owner_reference(meta)]


# --- checks on the merged pod -----------------------------------------------------------------


def _container_sources(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Where each container name of the pod comes from, as TaskRun field paths."""
    template = (spec.get("podTemplate") or {}).get("spec") or {}
    sources: list[tuple[str, Any]] = [("spec.baseContainerName", base_container_name(spec))]
    for i, c in enumerate(template.get("containers") or []):
        if i and isinstance(c, Mapping):
            sources.append((f"spec.podTemplate.spec.containers[{i}].name", c.get("name")))
    for i, c in enumerate(template.get("initContainers") or []):
        if isinstance(c, Mapping):
            sources.append((f"spec.podTemplate.spec.initContainers[{i}].name", c.get("name")))
    for i, c in enumerate(spec.get("initContainers") or []):
        if isinstance(c, Mapping):
            sources.append((f"spec.initContainers[{i}].name", c.get("name")))
    if spec.get("doXcomPush"):
        sources.append(("spec.doXcomPush", XCOM_SIDECAR_NAME))
    return [(path, str(name)) for path, name in sources]


def _volume_sources(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    template = (spec.get("podTemplate") or {}).get("spec") or {}
    sources: list[tuple[str, Any]] = []
    if spec.get("doXcomPush"):
        sources.append(("spec.doXcomPush", XCOM_VOLUME_NAME))
    for i, v in enumerate(template.get("volumes") or []):
        if isinstance(v, Mapping):
            sources.append((f"spec.podTemplate.spec.volumes[{i}].name", v.get("name")))
    for i, v in enumerate(spec.get("volumes") or []):
        if isinstance(v, Mapping):
            sources.append((f"spec.volumes[{i}].name", v.get("name")))
    return [(path, str(name)) for path, name in sources]


def _first_duplicate(names: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _blame(sources: list[tuple[str, str]], name: str, fallback: str) -> str:
    paths = [path for path, source_name in sources if source_name == name]
    return paths[-1] if len(paths) > 1 else fallback


def _check(pod: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    pod_spec = pod["spec"]
    containers = [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]
    duplicate = _first_duplicate(str(c.get("name")) for c in containers)
    if duplicate is not None:
        raise SpecError(
            _blame(_container_sources(spec), duplicate, "spec.podTemplate"),
            f"container name {duplicate!r} is used twice in the pod; names must be unique "
            "across containers and initContainers",
        )
    volumes = pod_spec.get("volumes") or []
    names = [str(v.get("name")) if isinstance(v, Mapping) else "" for v in volumes]
    duplicate = _first_duplicate(names)
    if duplicate is not None:
        raise SpecError(
            _blame(_volume_sources(spec), duplicate, "spec.volumes"),
            f"volume name {duplicate!r} is defined twice in the pod",
        )
    defined = set(names)
    for c in containers:
        for mount in c.get("volumeMounts") or []:
            if isinstance(mount, Mapping) and str(mount.get("name")) not in defined:
                raise SpecError(
                    _locate_mount(spec, mount),
                    f"container {c.get('name')!r} mounts volume {mount.get('name')!r}, "
                    "which no volume of the pod defines",
                )


def _locate_mount(spec: Mapping[str, Any], mount: Mapping[str, Any]) -> str:
    template = (spec.get("podTemplate") or {}).get("spec") or {}
    places: list[tuple[str, Any]] = [("spec.volumeMounts", spec.get("volumeMounts"))]
    for where, containers in (
        ("spec.initContainers", spec.get("initContainers")),
        ("spec.podTemplate.spec.containers", template.get("containers")),
        ("spec.podTemplate.spec.initContainers", template.get("initContainers")),
    ):
        for i, c in enumerate(containers or []):
            places.append((f"{where}[{i}].volumeMounts", c.get("volumeMounts")))
    for where, mounts in places:
        # The pod holds the template pruned of nulls; compare like with like.
        mounts = _prune_none(mounts)
        if isinstance(mounts, list) and mount in mounts:
            return f"{where}[{mounts.index(mount)}]"
    return "spec.volumeMounts"


def _prune_none(value: Any) -> Any:
    """Drop null fields, as the Kubernetes client's serialisation does for KPO."""
    if isinstance(value, dict):
        return {k: _prune_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_none(v) for v in value]
    return value
