"""KubernetesPodOperator keyword arguments -> TaskRun: the pure half of TaskRunOperator.

Everything here runs on the Airflow worker and talks to no cluster: it reads pod template
files, serialises Kubernetes client objects and computes names and labels.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Container, Iterable, Mapping
from typing import Any

from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator, make_safe_label_value
from kubernetes.client import ApiClient, Configuration
from kubernetes.client import models as k8s
from pydantic import ValidationError

from taskrun.api import (
    AIRFLOW_DAG_LABEL,
    AIRFLOW_IDENTITY_LABELS,
    AIRFLOW_MAP_INDEX_LABEL,
    AIRFLOW_RUN_LABEL,
    AIRFLOW_TASK_LABEL,
    AIRFLOW_TRY_LABEL,
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
    ANNOTATION_SPEC_HASH,
    API_VERSION,
    DEFAULT_BASE_CONTAINER_NAME,
    KIND,
    KPO_SPEC_FIELDS,
    OnFinishAction,
    TaskRunSpec,
    TaskRunStatus,
    format_validation_error,
    logs_in_status,
    spec_hash,
)

# The TaskRun name leaves room for the controller's "-<attempt>" pod suffix (up to 99
# attempts) so the pod name stays the plain "<taskrun>-<attempt>".
MAX_TASKRUN_NAME_LEN = 60
_NAME_HASH_LEN = 10

# on_kill_action "cancel": stop the run, and release a pod held for its logs at once since
# nobody will read them.
CANCEL_PATCH: dict[str, Any] = {
    "metadata": {"annotations": {ANNOTATION_LOGS_ACKED: "true"}},
    "spec": {"cancel": True},
}

# KPO arguments whose value needs more than serialising (see build_spec); every other
# argument of KPO_SPEC_FIELDS is copied into its field as it serialises.
_CONVERTED = {
    "env_vars",
    "image_pull_secrets",
    "secrets",
    "labels",
    "termination_message_policy",
    "base_container_name",
    "pod_template_file",
    "pod_template_dict",
    "full_pod_spec",
    "on_finish_action",
    "is_delete_operator_pod",
    "skip_on_exit_code",
    "container_logs",
}
_DIRECT_FIELDS = {arg: field for arg, field in KPO_SPEC_FIELDS.items() if arg not in _CONVERTED}

_SPEC_FIELDS = {info.alias or name: info for name, info in TaskRunSpec.model_fields.items()}
# Spec fields whose KPO value is a meaningful boolean: False must reach the spec, since
# the controller's KPO merge treats a missing value and False the same but a template's
# value differently from an explicit one only when truthy.
_BOOL_FIELDS = {
    field
    for field in _DIRECT_FIELDS.values()
    if _SPEC_FIELDS[field].annotation in (bool, bool | None)
}


def _default(field: str) -> Any:
    default = _SPEC_FIELDS[field].default
    return getattr(default, "value", default)


def serialize(obj: Any) -> Any:
    """Kubernetes client objects (or dicts/lists of them) -> plain JSON-able data, API casing."""
    return ApiClient(configuration=Configuration()).sanitize_for_serialization(obj)


def _k8s_name(value: str) -> str:
    # KPO's _set_name: lowercase, runs of anything outside [a-z0-9-] become "-".
    return re.sub(r"[^a-z0-9-]+", "-", value.lower())


def taskrun_name(
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int | None,
    try_number: int,
    prefix: str | None = None,
) -> str:
    """Deterministic TaskRun name of one task-instance try: ``<prefix>-<hash>``, a DNS label.

    ``prefix`` (KPO's ``name``, else the task id) only makes the name readable; the hash of
    dag_id, task_id, run_id, map_index and try_number makes it unique, so a restarted worker
    finds the TaskRun it created before instead of starting a second pod.
    """
    identity = json.dumps(
        [dag_id, task_id, run_id, -1 if map_index is None else map_index, try_number]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:_NAME_HASH_LEN]
    head = name_head(prefix or task_id)
    # A DNS label must start with a letter or digit; the hash alone always qualifies.
    return f"{head}-{digest}" if head else digest


def name_head(prefix: str) -> str:
    """The readable part of a TaskRun name: KPO's name slug, cut to leave room for the hash."""
    head = _k8s_name(prefix).strip("-.")
    return head[: MAX_TASKRUN_NAME_LEN - _NAME_HASH_LEN - 1].strip("-")


def ti_labels(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int,
    map_index: int | None,
    airflow_version: str,
    in_cluster: bool | None,
) -> dict[str, str]:
    """The task-instance labels KPO puts on its pod, sanitised exactly as KPO does."""
    labels = {
        AIRFLOW_DAG_LABEL: dag_id,
        AIRFLOW_TASK_LABEL: task_id,
        AIRFLOW_RUN_LABEL: run_id,
        "kubernetes_pod_operator": "True",
    }
    if map_index is not None and map_index >= 0:
        labels[AIRFLOW_MAP_INDEX_LABEL] = str(map_index)
    labels[AIRFLOW_TRY_LABEL] = str(try_number)
    labels = {key: make_safe_label_value(str(value)) for key, value in labels.items()}
    # KPO adds these two after sanitising, unsanitised.
    labels["airflow_version"] = airflow_version.replace("+", "-")
    if in_cluster is not None:
        labels["airflow_kpo_in_cluster"] = str(in_cluster)
    return labels


def env_list(env_vars: Any) -> list[dict[str, Any]]:
    """KPO's env_vars (dict in insertion order, or list of V1EnvVar / dicts) -> EnvVar list."""
    if not env_vars:
        return []
    if isinstance(env_vars, Mapping):
        return [{"name": str(k), "value": v} for k, v in env_vars.items()]
    return list(serialize(list(env_vars)))


def image_pull_secrets(value: Any) -> list[dict[str, Any]]:
    """KPO's image_pull_secrets: a comma-separated string or LocalObjectReference list."""
    if not value:
        return []
    if isinstance(value, str):
        # Split exactly as KPO does (no stripping): the pod must be the same.
        return [{"name": name} for name in value.split(",")]
    return list(serialize(list(value)))


def secret_mounts(secrets: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Airflow ``Secret`` objects -> TaskRun ``spec.secrets`` entries."""
    mounts = []
    for secret in secrets or []:
        mount: dict[str, Any] = {"deployType": secret.deploy_type, "secret": secret.secret}
        if secret.deploy_target is not None:
            mount["deployTarget"] = secret.deploy_target
        if secret.key is not None:
            mount["key"] = secret.key
        if secret.items:
            mount["items"] = serialize(list(secret.items))
        mounts.append(mount)
    return mounts


def skip_exit_codes(value: int | Container[int] | None) -> list[int]:
    """KPO's skip_on_exit_code (an int, any container of ints, or None) -> a sorted list."""
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, Iterable):
        return sorted({int(code) for code in value})
    # A Container that cannot be iterated (e.g. a custom __contains__) has no list form.
    raise TypeError(
        f"skip_on_exit_code must be an int or an iterable of ints, got {type(value).__name__}"
    )


def on_finish_action(value: str | None, is_delete_operator_pod: bool | None) -> OnFinishAction:
    """KPO's on_finish_action, with the deprecated is_delete_operator_pod taking precedence."""
    if is_delete_operator_pod is not None:
        return OnFinishAction.DELETE_POD if is_delete_operator_pod else OnFinishAction.KEEP_POD
    action = str(value or OnFinishAction.DELETE_POD)
    try:
        return OnFinishAction(action)
    except ValueError:
        allowed = tuple(a.value for a in OnFinishAction)
        raise ValueError(f"on_finish_action must be one of {allowed}, got {action!r}") from None


def pod_template(
    pod_template_file: str | None,
    pod_template_dict: Mapping[str, Any] | None,
    full_pod_spec: Any,
) -> dict[str, Any] | None:
    """The base pod KPO would start from, as a PodTemplateSpec dict ({metadata, spec}).

    KPO's precedence: pod_template_file, else pod_template_dict, else full_pod_spec; a
    template and full_pod_spec are merged with KPO's own merge (full_pod_spec wins).
    Read here, on the worker, because the file lives there and not in the cluster.
    """
    base: k8s.V1Pod | None
    if pod_template_file:
        base = PodGenerator.deserialize_model_file(pod_template_file)
    elif pod_template_dict:
        base = PodGenerator.deserialize_model_dict(dict(pod_template_dict))
    else:
        base = None
    full = _as_pod(full_pod_spec) if full_pod_spec else None
    if base is not None and full is not None:
        base = PodGenerator.reconcile_pods(base, full)
    elif base is None:
        base = full
    if base is None:
        return None
    data = serialize(base)
    template = {key: data[key] for key in ("metadata", "spec") if data.get(key)}
    return template or None


def _as_pod(value: Any) -> k8s.V1Pod:
    if isinstance(value, k8s.V1Pod):
        return value
    if isinstance(value, Mapping):
        return PodGenerator.deserialize_model_dict(dict(value))
    raise TypeError(f"full_pod_spec must be a V1Pod or a dict, got {type(value).__name__}")


def container_logs(
    value: Iterable[str] | str | bool | None,
    base_container_name: str,
    template: Mapping[str, Any] | None,
) -> list[str]:
    """KPO's container_logs -> the list of container names whose logs the task shows.

    ``True`` means every regular container in KPO (not just the base one): the names are
    known here, the base container plus the template's other containers.
    """
    if value is None or value is False:
        return [base_container_name]
    if value is True:
        names = [base_container_name]
        containers = ((template or {}).get("spec") or {}).get("containers") or []
        names += [c["name"] for c in containers[1:] if c.get("name")]
        return names
    if isinstance(value, str):
        return [value]
    return list(value)


def init_container_names(value: Iterable[str] | str | bool | None, spec: TaskRunSpec) -> list[str]:
    """KPO's init_container_logs -> the init containers whose logs the task shows."""
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    if value is True:
        template = spec.pod_template.spec if spec.pod_template else None
        merged = [*((template.init_containers if template else None) or [])]
        merged += spec.init_containers or []
        return list(dict.fromkeys(c.name for c in merged if c.name))
    return list(value)


def logged_containers(
    init_container_logs: Iterable[str] | str | bool | None,
    base_container_name: str,
    spec: TaskRunSpec,
) -> list[str]:
    """The containers whose logs the task prints once the run ended, in order: KPO's
    init_container_logs, then container_logs (the base container by default)."""
    return [
        *init_container_names(init_container_logs, spec),
        *(spec.container_logs or [base_container_name]),
    ]


def log_annotations(get_logs: bool, printed: list[str], spec: TaskRunSpec) -> dict[str, str]:
    """The logs hand-over the task asks for (taskrun.api.handover).

    With ``get_logs`` the pod is held until the task has read its log. The log may come
    from status.logs instead when the task prints exactly the one container the tail
    covers. Several containers are read from the pod: their tails are joined under header
    lines that a log line could imitate, so the tail cannot be split back exactly.
    """
    if not get_logs:
        return {}
    annotations = {ANNOTATION_HOLD_POD: "true"}
    if len(printed) == 1 and printed == spec.effective_container_logs:
        annotations[ANNOTATION_LOGS_FROM_STATUS] = "true"
    return annotations


def whole_log_in_status(taskrun: Mapping[str, Any], printed: list[str]) -> str | None:
    """status.logs.tail when it is the whole log the task would read from the pod
    (``printed``, one container), and the controller does not hold the pod for an ack;
    None when the pod's log is to be read (and acknowledged) instead."""
    if not logs_in_status(taskrun):
        return None
    logs = status_of(taskrun).logs
    if logs is None or logs.tail is None or [logs.container] != printed:
        return None
    return logs.tail


def lines_after(log: str, skip_lines: int) -> list[bytes]:
    """The lines of a whole log held as text (``status.logs.tail``) after its first
    ``skip_lines`` lines (those the task followed while the pod ran), split as the pod's log
    bytes are split when read: the same lines the read would print.

    The text is the log decoded with U+FFFD for invalid bytes; "\n" and "\r", where lines
    split, are ASCII and never part of an invalid sequence, so each line decodes to what
    the read's line decodes to.
    """
    data = log.encode()
    if skip_lines > 0:
        parts = data.split(b"\n", skip_lines)
        data = parts[skip_lines] if len(parts) > skip_lines else b""
    return data.splitlines()


def pod_template_of(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The base pod of these KPO kwargs (see pod_template)."""
    return pod_template(
        kwargs.get("pod_template_file"),
        kwargs.get("pod_template_dict"),
        kwargs.get("full_pod_spec"),
    )


def template_namespace(template: Mapping[str, Any] | None) -> str | None:
    """The namespace a pod template (file, dict or full_pod_spec, merged) names, if any."""
    return ((template or {}).get("metadata") or {}).get("namespace") or None


_READ_TEMPLATE: Any = object()


def build_spec(
    kwargs: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None = None,
    template: dict[str, Any] | None = _READ_TEMPLATE,
) -> dict:
    """KPO constructor kwargs (rendered) -> a TaskRun spec dict in API casing.

    ``labels`` are extra pod labels (the task-instance ones) merged over the user's, as KPO
    does. ``template``: the pod template if already read (pod_template_of). Values equal to
    the spec's defaults are left out. The spec is validated with the TaskRunSpec model, so
    a spec the controller would refuse fails here, naming the field (ValueError).
    """
    spec: dict[str, Any] = {}
    for kpo_name, field in _DIRECT_FIELDS.items():
        value = kwargs.get(kpo_name)
        if value is None:
            continue
        data = serialize(value)
        if field in _BOOL_FIELDS:
            data = bool(data)
        elif not data and data != 0:
            continue
        spec[field] = data

    env = env_list(kwargs.get("env_vars"))
    if env:
        spec["envVars"] = env
    pull_secrets = image_pull_secrets(kwargs.get("image_pull_secrets"))
    if pull_secrets:
        spec["imagePullSecrets"] = pull_secrets
    secrets = secret_mounts(kwargs.get("secrets"))
    if secrets:
        spec["secrets"] = secrets

    all_labels = {
        str(k): "" if v is None else str(v) for k, v in (kwargs.get("labels") or {}).items()
    }
    all_labels.update(labels or {})
    if all_labels:
        spec["labels"] = all_labels

    spec["terminationMessagePolicy"] = kwargs.get("termination_message_policy") or _default(
        "terminationMessagePolicy"
    )
    base_name = kwargs.get("base_container_name") or DEFAULT_BASE_CONTAINER_NAME
    spec["baseContainerName"] = base_name

    if template is _READ_TEMPLATE:
        template = pod_template_of(kwargs)
    if template:
        spec["podTemplate"] = template
    if "image" not in spec and template:
        # KPO lets the template name the image; the TaskRun requires one, and the operator's
        # merge keeps the template's image when the operator gives none, so this is the same.
        containers = (template.get("spec") or {}).get("containers") or []
        if containers and containers[0].get("image"):
            spec["image"] = containers[0]["image"]

    spec["onFinishAction"] = on_finish_action(
        kwargs.get("on_finish_action"), kwargs.get("is_delete_operator_pod")
    ).value
    skip = skip_exit_codes(kwargs.get("skip_on_exit_code"))
    if skip:
        spec["skipOnExitCode"] = skip
    logs = container_logs(kwargs.get("container_logs"), base_name, template)
    if logs != [base_name]:
        spec["containerLogs"] = logs
    startup = spec.get("startupTimeoutSeconds", _default("startupTimeoutSeconds"))
    if spec.get("scheduleTimeoutSeconds") == startup:
        spec.pop("scheduleTimeoutSeconds", None)

    spec = {k: v for k, v in spec.items() if v != _default(k)}
    try:
        TaskRunSpec.model_validate(spec)
    except ValidationError as err:
        raise ValueError(f"the TaskRun spec is invalid:\n{format_validation_error(err)}") from None
    return spec


def build_taskrun(
    kwargs: Mapping[str, Any],
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str] | None = None,
    metadata_labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    template: dict[str, Any] | None = _READ_TEMPLATE,
) -> dict[str, Any]:
    """A whole TaskRun object: metadata (name, namespace, labels, annotations) and spec.

    The metadata carries ANNOTATION_SPEC_HASH, the spec's fingerprint: with the identity
    labels it tells our TaskRun from another of the same name (is_ours).
    """
    spec = build_spec(kwargs, labels=labels, template=template)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if metadata_labels:
        metadata["labels"] = dict(metadata_labels)
    metadata["annotations"] = {**(annotations or {}), ANNOTATION_SPEC_HASH: spec_hash(spec)}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def status_of(taskrun: Mapping[str, Any]) -> TaskRunStatus:
    """The TaskRun's status, read through the model."""
    return TaskRunStatus.model_validate(taskrun.get("status") or {})


def foreign_because(found: Mapping[str, Any], ours: Mapping[str, Any]) -> str | None:
    """Why the TaskRun ``found`` under our name is not the one ``ours`` describes; None if
    it is ours: the same identity labels, the same spec-hash annotation, and a stored spec
    that still hashes to it (the spec is immutable but for ``cancel``)."""
    found_meta, our_meta = found.get("metadata") or {}, ours.get("metadata") or {}
    found_labels, our_labels = found_meta.get("labels") or {}, our_meta.get("labels") or {}
    for key in AIRFLOW_IDENTITY_LABELS:
        if found_labels.get(key) != our_labels.get(key):
            return (
                f"its label {key}={found_labels.get(key)!r} is not this task instance's"
                f" {our_labels.get(key)!r}"
            )
    expected = (our_meta.get("annotations") or {})[ANNOTATION_SPEC_HASH]
    recorded = (found_meta.get("annotations") or {}).get(ANNOTATION_SPEC_HASH)
    if recorded is None:
        return f"it has no {ANNOTATION_SPEC_HASH} annotation, so this operator did not create it"
    if recorded != expected:
        return (
            f"its {ANNOTATION_SPEC_HASH} {recorded[:12]} is not the hash of the spec this task"
            f" would create ({expected[:12]}): the task's arguments changed, or another"
            " creator used the name"
        )
    try:
        stored = spec_hash(found.get("spec") or {})
    except (ValidationError, TypeError):
        stored = None
    if stored != expected:
        return f"its spec does not match its {ANNOTATION_SPEC_HASH} annotation"
    return None
