"""TaskRunSpec: the pod to run (KubernetesPodOperator's parameters) and the run's policies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Strict, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo

from taskrun.api.base import ApiModel
from taskrun.api.k8s import (
    Affinity,
    Container,
    ContainerPort,
    EnvFromSource,
    EnvVar,
    HostAlias,
    KeyToPath,
    LocalObjectReference,
    PodDNSConfig,
    PodSecurityContext,
    PodTemplateSpec,
    ResourceRequirements,
    SecurityContext,
    Toleration,
    Volume,
    VolumeMount,
)
from taskrun.api.names import (
    DEFAULT_BASE_CONTAINER_NAME,
    DEFAULT_STARTUP_TIMEOUT_SECONDS,
    XCOM_SIDECAR_NAME,
)
from taskrun.api.reasons import OnFinishAction
from taskrun.api.types import (
    INT32_MAX,
    INT64_MAX,
    DnsLabel,
    DnsSubdomain,
    LabelValue,
    QualifiedName,
)

# metadata.annotations of any object, the pod included (apimachinery TotalAnnotationSizeLimitB).
POD_ANNOTATIONS_MAX_BYTES = 256 * 1024
MAX_RETRIES = 100
DEFAULT_BACKOFF_INITIAL = 10
DEFAULT_BACKOFF_MAX = 300
# Each captured container adds a log tail to the status (the status budget cuts them, but
# every one is also a pods/log read at the end of each attempt).
MAX_CONTAINER_LOGS = 32
# Bounds the CEL cost estimate of the CRD rule that iterates over init containers.
MAX_INIT_CONTAINERS = 64
# A week: longer waits for a pod to start are a misconfiguration, not a plan.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600

# The spec field's type is the enum itself; plain strings (the wire form) are accepted.
OnFinishActionName = Annotated[OnFinishAction, Strict(False)]
ExitCode = Annotated[int, Field(ge=0, le=255)]


def _kpo(*arguments: str) -> dict[str, Any]:
    # The KPO arguments whose values TaskRunOperator puts in this field: taskrun.api.kpo's
    # KPO_SPEC_FIELDS is made from these notes, and the API reference shows them.
    return {"kpo": ", ".join(arguments)}


def _airflow(analogy: str) -> dict[str, Any]:
    # A field no KPO argument fills: the Airflow notion it stands for ("-": none), for the docs.
    return {"airflow": analogy}


def kpo_arguments(info: FieldInfo) -> tuple[str, ...]:
    """The KPO arguments a spec field is filled from (its ``_kpo`` note); () for none."""
    extra = info.json_schema_extra
    note = extra.get("kpo") if isinstance(extra, dict) else None
    return tuple(str(note).split(", ")) if note else ()


class SecretMount(ApiModel):
    """A Kubernetes secret exposed to the base container (KPO's `Secret`)."""

    # The CRD's copy of the checks in _target_matches_type.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.deployType != 'volume' || has(self.deployTarget)",
                    "message": "deployTarget (the mount path) is required when deployType is"
                    " volume",
                },
                {
                    "rule": "self.deployType != 'env' || !has(self.key) || has(self.deployTarget)",
                    "message": "deployTarget (the variable name) is required for env with a key",
                },
                {
                    "rule": "self.deployType == 'volume' || !has(self.items)",
                    "message": "items apply to deployType volume only",
                },
            ]
        }
    )

    deploy_type: Literal["env", "volume"] = Field(
        alias="deployType",
        description="`env`: environment variable(s); `volume`: files (KPO `deploy_type`).",
    )
    deploy_target: str | None = Field(
        default=None,
        alias="deployTarget",
        min_length=1,
        description="Env var name (env with key) or mount path (volume) (KPO `deploy_target`).",
    )
    secret: DnsSubdomain = Field(description="Name of the secret (KPO `secret`).")
    key: str | None = Field(
        default=None,
        min_length=1,
        description="Key of the secret; env without a key imports all keys (KPO `key`).",
    )
    items: list[KeyToPath] | None = Field(
        default=None, description="Keys projected into the volume (KPO `items`)."
    )

    @model_validator(mode="after")
    def _target_matches_type(self) -> SecretMount:
        if self.deploy_type == "volume" and not self.deploy_target:
            raise ValueError("deployTarget (the mount path) is required when deployType is volume")
        if self.deploy_type == "env" and self.key and not self.deploy_target:
            raise ValueError("deployTarget (the variable name) is required for env with a key")
        if self.deploy_type == "env" and self.items is not None:
            raise ValueError("items apply to deployType volume only")
        return self


class RetryBackoff(ApiModel):
    """Delay before attempt n+1: min(initialSeconds * factor**(n-1), maxSeconds)."""

    # The CRD's copy of _max_not_below_initial; unset fields take their defaults.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"(has(self.maxSeconds) ? self.maxSeconds : {DEFAULT_BACKOFF_MAX})"
                    " >= (has(self.initialSeconds) ? self.initialSeconds"
                    f" : {DEFAULT_BACKOFF_INITIAL})",
                    "message": "maxSeconds must be >= initialSeconds",
                }
            ]
        }
    )

    initial_seconds: int = Field(
        default=DEFAULT_BACKOFF_INITIAL,
        alias="initialSeconds",
        ge=0,
        le=MAX_TIMEOUT_SECONDS,
        description="Delay before the second attempt (Airflow `retry_delay`).",
    )
    factor: float = Field(
        default=2.0,
        ge=1.0,
        le=10.0,
        description="Growth of the delay per attempt (Airflow `retry_exponential_backoff`).",
    )
    max_seconds: int = Field(
        default=DEFAULT_BACKOFF_MAX,
        alias="maxSeconds",
        ge=0,
        le=MAX_TIMEOUT_SECONDS,
        description="Upper bound of the delay (Airflow `max_retry_delay`).",
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> RetryBackoff:
        if self.max_seconds < self.initial_seconds:
            raise ValueError(
                f"maxSeconds ({self.max_seconds}) must be >= initialSeconds"
                f" ({self.initial_seconds})"
            )
        return self

    def delay_seconds(self, attempt: int) -> float:
        """The delay before `attempt` (2 = the first retry)."""
        if attempt <= 1:
            return 0.0
        return float(min(self.initial_seconds * self.factor ** (attempt - 2), self.max_seconds))


class TaskRunSpec(ApiModel):
    """What to run (the KubernetesPodOperator parameters that shape the pod) and how."""

    # The pod: fields of the base container.
    image: str = Field(
        min_length=1,
        description="Image of the base container (KPO `image`).",
        json_schema_extra=_kpo("image"),
    )
    cmds: list[str] | None = Field(
        default=None,
        description="Entrypoint: the container `command` (KPO `cmds`).",
        json_schema_extra=_kpo("cmds"),
    )
    arguments: list[str] | None = Field(
        default=None,
        description="Arguments: the container `args` (KPO `arguments`).",
        json_schema_extra=_kpo("arguments"),
    )
    env_vars: list[EnvVar] | None = Field(
        default=None,
        alias="envVars",
        description="Environment of the base container (KPO `env_vars`).",
        json_schema_extra=_kpo("env_vars"),
    )
    env_from: list[EnvFromSource] | None = Field(
        default=None,
        alias="envFrom",
        description="Sources of environment variables (KPO `env_from`).",
        json_schema_extra=_kpo("env_from"),
    )
    secrets: list[SecretMount] | None = Field(
        default=None,
        description="Secrets as env vars or files (KPO `secrets`).",
        json_schema_extra=_kpo("secrets"),
    )
    configmaps: list[DnsSubdomain] | None = Field(
        default=None,
        description="ConfigMaps imported whole as env vars, after envFrom (KPO `configmaps`).",
        json_schema_extra=_kpo("configmaps"),
    )
    ports: list[ContainerPort] | None = Field(
        default=None,
        description="Ports of the base container (KPO `ports`).",
        json_schema_extra=_kpo("ports"),
    )
    volume_mounts: list[VolumeMount] | None = Field(
        default=None,
        alias="volumeMounts",
        description="Volume mounts of the base container (KPO `volume_mounts`).",
        json_schema_extra=_kpo("volume_mounts"),
    )
    container_resources: ResourceRequirements | None = Field(
        default=None,
        alias="containerResources",
        description="Requests and limits of the base container (KPO `container_resources`).",
        json_schema_extra=_kpo("container_resources"),
    )
    container_security_context: SecurityContext | None = Field(
        default=None,
        alias="containerSecurityContext",
        description="Security context of the base container (KPO `container_security_context`).",
        json_schema_extra=_kpo("container_security_context"),
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None,
        alias="imagePullPolicy",
        description="Image pull policy of the base container (KPO `image_pull_policy`).",
        json_schema_extra=_kpo("image_pull_policy"),
    )
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] = Field(
        default="File",
        alias="terminationMessagePolicy",
        description="Termination message policy (KPO `termination_message_policy`).",
        json_schema_extra=_kpo("termination_message_policy"),
    )
    base_container_name: DnsLabel = Field(
        default=DEFAULT_BASE_CONTAINER_NAME,
        alias="baseContainerName",
        description="Name of the container that runs the task (KPO `base_container_name`).",
        json_schema_extra=_kpo("base_container_name"),
    )
    pod_runtime_info_envs: list[EnvVar] | None = Field(
        default=None,
        alias="podRuntimeInfoEnvs",
        description="Env vars appended after envVars (KPO `pod_runtime_info_envs`).",
        json_schema_extra=_kpo("pod_runtime_info_envs"),
    )

    # The pod: pod-level fields.
    volumes: list[Volume] | None = Field(
        default=None,
        description="Volumes of the pod (KPO `volumes`).",
        json_schema_extra=_kpo("volumes"),
    )
    affinity: Affinity | None = Field(
        default=None,
        description="Scheduling affinity of the pod (KPO `affinity`).",
        json_schema_extra=_kpo("affinity"),
    )
    node_selector: dict[QualifiedName, LabelValue] | None = Field(
        default=None,
        alias="nodeSelector",
        description="Node labels the pod must match (KPO `node_selector`).",
        json_schema_extra=_kpo("node_selector"),
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        description="Tolerations of the pod (KPO `tolerations`).",
        json_schema_extra=_kpo("tolerations"),
    )
    security_context: PodSecurityContext | None = Field(
        default=None,
        alias="securityContext",
        description="Security context of the pod (KPO `security_context`).",
        json_schema_extra=_kpo("security_context"),
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None,
        alias="serviceAccountName",
        description="Service account of the pod (KPO `service_account_name`).",
        json_schema_extra=_kpo("service_account_name"),
    )
    automount_service_account_token: bool | None = Field(
        default=None,
        alias="automountServiceAccountToken",
        description="Mount the service account token (KPO `automount_service_account_token`).",
        json_schema_extra=_kpo("automount_service_account_token"),
    )
    host_network: bool = Field(
        default=False,
        alias="hostNetwork",
        description="Use the node's network namespace (KPO `hostnetwork`).",
        json_schema_extra=_kpo("hostnetwork"),
    )
    host_aliases: list[HostAlias] | None = Field(
        default=None,
        alias="hostAliases",
        description="Extra /etc/hosts entries (KPO `host_aliases`).",
        json_schema_extra=_kpo("host_aliases"),
    )
    dns_policy: Literal["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"] | None = (
        Field(
            default=None,
            alias="dnsPolicy",
            description="DNS policy of the pod (KPO `dnspolicy`).",
            json_schema_extra=_kpo("dnspolicy"),
        )
    )
    dns_config: PodDNSConfig | None = Field(
        default=None,
        alias="dnsConfig",
        description="DNS resolver settings of the pod (KPO `dns_config`).",
        json_schema_extra=_kpo("dns_config"),
    )
    hostname: DnsLabel | None = Field(
        default=None,
        description="Hostname of the pod (KPO `hostname`).",
        json_schema_extra=_kpo("hostname"),
    )
    subdomain: DnsLabel | None = Field(
        default=None,
        description="Subdomain of the pod (KPO `subdomain`).",
        json_schema_extra=_kpo("subdomain"),
    )
    scheduler_name: str | None = Field(
        default=None,
        alias="schedulerName",
        min_length=1,
        description="Scheduler that places the pod (KPO `schedulername`).",
        json_schema_extra=_kpo("schedulername"),
    )
    priority_class_name: DnsSubdomain | None = Field(
        default=None,
        alias="priorityClassName",
        description="PriorityClass of the pod (KPO `priority_class_name`).",
        json_schema_extra=_kpo("priority_class_name"),
    )
    runtime_class_name: DnsSubdomain | None = Field(
        default=None,
        alias="runtimeClassName",
        description="RuntimeClass of the pod (KPO `runtime_class_name`).",
        json_schema_extra=_kpo("runtime_class_name"),
    )
    init_containers: list[Container] | None = Field(
        default=None,
        alias="initContainers",
        max_length=MAX_INIT_CONTAINERS,
        description="Init containers, native sidecars included (KPO `init_containers`).",
        json_schema_extra=_kpo("init_containers"),
    )
    image_pull_secrets: list[LocalObjectReference] | None = Field(
        default=None,
        alias="imagePullSecrets",
        description="Secrets for pulling images (KPO `image_pull_secrets`).",
        json_schema_extra=_kpo("image_pull_secrets"),
    )
    labels: dict[QualifiedName, LabelValue] | None = Field(
        default=None,
        description="Labels of the pod (KPO `labels`).",
        json_schema_extra=_kpo("labels"),
    )
    annotations: dict[QualifiedName, str] | None = Field(
        default=None,
        description="Annotations of the pod (KPO `annotations`).",
        json_schema_extra=_kpo("annotations"),
    )
    termination_grace_period: int | None = Field(
        default=None,
        alias="terminationGracePeriod",
        ge=0,
        le=INT64_MAX,
        description="Pod terminationGracePeriodSeconds (KPO `termination_grace_period`).",
        json_schema_extra=_kpo("termination_grace_period"),
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        alias="activeDeadlineSeconds",
        ge=1,
        # Pod validation takes 1..2147483647 though the field is an int64.
        le=INT32_MAX,
        description="Deadline of the pod, enforced by the controller too"
        " (KPO `active_deadline_seconds`).",
        json_schema_extra=_kpo("active_deadline_seconds"),
    )
    pod_template: PodTemplateSpec | None = Field(
        default=None,
        alias="podTemplate",
        description="Base pod (metadata + spec) the fields above are merged onto"
        " (KPO `pod_template_file`, `pod_template_dict`, `full_pod_spec`).",
        json_schema_extra=_kpo("pod_template_file", "pod_template_dict", "full_pod_spec"),
    )

    # Policies.
    startup_timeout_seconds: int = Field(
        default=DEFAULT_STARTUP_TIMEOUT_SECONDS,
        alias="startupTimeoutSeconds",
        ge=1,
        le=MAX_TIMEOUT_SECONDS,
        description="Time from scheduled to running before StartupTimeout"
        " (KPO `startup_timeout_seconds`).",
        json_schema_extra=_kpo("startup_timeout_seconds"),
    )
    schedule_timeout_seconds: int | None = Field(
        default=None,
        alias="scheduleTimeoutSeconds",
        ge=1,
        le=MAX_TIMEOUT_SECONDS,
        description="Time to get scheduled before ScheduleTimeout; default startupTimeoutSeconds"
        " (KPO `schedule_timeout_seconds`).",
        json_schema_extra=_kpo("schedule_timeout_seconds"),
    )
    on_finish_action: OnFinishActionName = Field(
        default=OnFinishAction.DELETE_POD,
        alias="onFinishAction",
        description="What happens to the pod when the run ends (KPO `on_finish_action`).",
        json_schema_extra=_kpo("on_finish_action", "is_delete_operator_pod"),
    )
    skip_on_exit_code: list[ExitCode] | None = Field(
        default=None,
        alias="skipOnExitCode",
        description="Base container exit codes that end the run Skipped (KPO `skip_on_exit_code`).",
        json_schema_extra=_kpo("skip_on_exit_code"),
    )
    do_xcom_push: bool = Field(
        default=False,
        alias="doXcomPush",
        description="Capture /airflow/xcom/return.json as status.result (KPO `do_xcom_push`).",
        json_schema_extra=_kpo("do_xcom_push"),
    )
    get_logs: bool = Field(
        default=True,
        alias="getLogs",
        description="Capture the log tail into status.logs (KPO `get_logs`).",
        json_schema_extra=_kpo("get_logs"),
    )
    container_logs: list[DnsLabel] | None = Field(
        default=None,
        alias="containerLogs",
        max_length=MAX_CONTAINER_LOGS,
        description="Containers whose logs are captured; default the base container"
        " (KPO `container_logs`).",
        json_schema_extra=_kpo("container_logs"),
    )
    log_events_on_failure: bool = Field(
        default=False,
        alias="logEventsOnFailure",
        description="Record the pod's events in status on failure (KPO `log_events_on_failure`).",
        json_schema_extra=_kpo("log_events_on_failure"),
    )
    retries: int = Field(
        default=0,
        ge=0,
        le=MAX_RETRIES,
        description="Extra attempts after a failure, each a new pod (Airflow `retries`).",
        json_schema_extra=_airflow("retries"),
    )
    retry_backoff: RetryBackoff | None = Field(
        default=None,
        alias="retryBackoff",
        description="Delay between attempts: 10 s doubling up to 300 s by default"
        " (Airflow `retry_delay`).",
        json_schema_extra=_airflow("retry_delay"),
    )
    cancel: bool = Field(
        default=False,
        description="Set true to stop the pod and end Cancelled; cannot be undone (KPO `on_kill`).",
        json_schema_extra=_airflow("on_kill"),
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        alias="ttlSecondsAfterFinished",
        ge=0,
        le=INT32_MAX,
        description="Delete the TaskRun itself this long after it finished (no KPO equivalent).",
        json_schema_extra=_airflow("-"),
    )

    @field_validator("init_containers")
    @classmethod
    def _init_container_names(
        cls, value: list[Container] | None, info: ValidationInfo
    ) -> list[Container] | None:
        base = info.data.get("base_container_name", DEFAULT_BASE_CONTAINER_NAME)
        seen: set[str] = set()
        for index, container in enumerate(value or []):
            if container.name in (base, XCOM_SIDECAR_NAME):
                owner = "the base container" if container.name == base else "the xcom sidecar"
                raise ValueError(f"[{index}].name {container.name!r} is taken by {owner}")
            if container.name in seen:
                raise ValueError(f"[{index}].name {container.name!r} is used twice")
            seen.add(container.name)
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations_fit_a_pod(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in (value or {}).items())
        if size > POD_ANNOTATIONS_MAX_BYTES:
            raise ValueError(
                f"annotations total {size} bytes; a pod allows at most "
                f"{POD_ANNOTATIONS_MAX_BYTES} bytes of annotations"
            )
        return value

    @field_validator("volumes")
    @classmethod
    def _unique_volume_names(cls, value: list[Volume] | None) -> list[Volume] | None:
        names = [volume.name for volume in value or []]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"volume names must be unique, repeated: {', '.join(duplicates)}")
        return value

    @property
    def effective_schedule_timeout_seconds(self) -> int:
        """scheduleTimeoutSeconds, or startupTimeoutSeconds when unset (KPO's rule)."""
        if self.schedule_timeout_seconds is not None:
            return self.schedule_timeout_seconds
        return self.startup_timeout_seconds

    @property
    def effective_container_logs(self) -> list[str]:
        """The containers whose logs are captured."""
        if not self.get_logs:
            return []
        return list(self.container_logs or [self.base_container_name])

    @property
    def effective_retry_backoff(self) -> RetryBackoff:
        """retryBackoff, or the defaults when unset."""
        return self.retry_backoff or RetryBackoff()


def spec_hash(spec: TaskRunSpec | Mapping[str, Any]) -> str:
    """A fingerprint of what a TaskRun runs: sha256 of its spec in canonical JSON.

    Parsed first, so the wire form with or without defaults gives the same hash; ``cancel``
    is left out, since it is the one field that may change after creation.
    """
    model = spec if isinstance(spec, TaskRunSpec) else TaskRunSpec.model_validate(dict(spec))
    data = model.to_dict()
    data.pop("cancel", None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
