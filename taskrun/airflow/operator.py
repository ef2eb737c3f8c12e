"""TaskRunOperator: KubernetesPodOperator's constructor, a TaskRun underneath."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from airflow.providers.cncf.kubernetes.backcompat.backwards_compat_converters import (
    convert_env_vars,
)
from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
from airflow.version import version as airflow_version
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from taskrun.airflow import mapping
from taskrun.airflow.client import TaskRunApi, TaskRunGone
from taskrun.airflow.compat import AirflowException, AirflowSkipException, BaseOperator, conf
from taskrun.airflow.trigger import TaskRunTrigger
from taskrun.api import (
    AIRFLOW_IDENTITY_LABELS,
    ANNOTATION_LOGS_ACKED,
    DEFAULT_BASE_CONTAINER_NAME,
    DEFAULT_STARTUP_TIMEOUT_SECONDS,
    FINISHED_PHASES,
    KPO_SPEC_FIELDS,
    OnFinishAction,
    OnKillAction,
    Phase,
    TaskRunSpec,
)

if TYPE_CHECKING:
    import jinja2
    from airflow.providers.cncf.kubernetes.secret import Secret
    from airflow.providers.common.compat.sdk import Context

_NETWORK_ERRORS = (ApiException, HTTPError, OSError)
_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# The KPO constructor arguments that become the TaskRun spec (see mapping.build_spec).
SPEC_ARGS = tuple(KPO_SPEC_FIELDS)


def finished(taskrun: Mapping[str, Any]) -> bool:
    """True once the TaskRun reached a terminal phase."""
    return mapping.status_of(taskrun).phase in FINISHED_PHASES


@dataclass(frozen=True)
class _Shown:
    """What was printed of a pod's log while it ran: whole lines, counted in bytes (for a
    read of the pod's log) and in lines (for the whole log in the status)."""

    size: int = 0
    lines: int = 0


class TaskRunOperator(BaseOperator):
    """Run a task as a TaskRun: a drop-in for KubernetesPodOperator with the same arguments.

    The pod is built and watched by the TaskRun controller in the cluster; this operator
    creates the TaskRun (or reattaches to it after a worker restart), shows its logs, pushes
    its result to XCom and raises skip / failure as KubernetesPodOperator does.
    ``on_kill_action``: ``cancel`` (default) sets ``spec.cancel``, ``delete`` (or KPO's
    ``delete_pod``) deletes the TaskRun, ``keep_pod`` leaves it running.
    """

    template_fields: Sequence[str] = (
        "image",
        "name",
        "hostname",
        "cmds",
        "annotations",
        "arguments",
        "env_vars",
        "labels",
        "config_file",
        "pod_template_file",
        "pod_template_dict",
        "namespace",
        "container_resources",
        "volumes",
        "volume_mounts",
        "cluster_context",
        "env_from",
        "configmaps",
        "node_selector",
        "kubernetes_conn_id",
        "base_container_name",
        "trigger_kwargs",
    )
    template_fields_renderers = {"env_vars": "py"}

    def __init__(
        self,
        *,
        kubernetes_conn_id: str | None = KubernetesHook.default_conn_name,
        namespace: str | None = None,
        image: str | None = None,
        name: str | None = None,
        random_name_suffix: bool = True,
        cmds: list[str] | None = None,
        arguments: list[str] | None = None,
        ports: list[k8s.V1ContainerPort] | None = None,
        volume_mounts: list[k8s.V1VolumeMount] | None = None,
        volumes: list[k8s.V1Volume] | None = None,
        env_vars: list[k8s.V1EnvVar] | dict[str, str] | None = None,
        env_from: list[k8s.V1EnvFromSource] | None = None,
        secrets: list[Secret] | None = None,
        in_cluster: bool | None = None,
        cluster_context: str | None = None,
        labels: dict | None = None,
        reattach_on_restart: bool | None = None,
        durable: bool | None = None,
        startup_timeout_seconds: int = DEFAULT_STARTUP_TIMEOUT_SECONDS,
        startup_check_interval_seconds: int = 5,
        schedule_timeout_seconds: int | None = None,
        get_logs: bool = True,
        base_container_name: str | None = None,
        base_container_status_polling_interval: float = 1,
        init_container_logs: Iterable[str] | str | Literal[True] | None = None,
        container_logs: Iterable[str] | str | Literal[True] | None = None,
        image_pull_policy: str | None = None,
        annotations: dict | None = None,
        container_resources: k8s.V1ResourceRequirements | None = None,
        affinity: k8s.V1Affinity | None = None,
        config_file: str | None = None,
        runtime_class_name: str | None = None,
        node_selector: dict | None = None,
        image_pull_secrets: list[k8s.V1LocalObjectReference] | str | None = None,
        service_account_name: str | None = None,
        automount_service_account_token: bool | None = None,
        hostnetwork: bool = False,
        host_aliases: list[k8s.V1HostAlias] | None = None,
        tolerations: list[k8s.V1Toleration] | None = None,
        security_context: k8s.V1PodSecurityContext | dict | None = None,
        container_security_context: k8s.V1SecurityContext | dict | None = None,
        xcom_sidecar_container_security_context: k8s.V1SecurityContext | dict | None = None,
        dnspolicy: str | None = None,
        dns_config: k8s.V1PodDNSConfig | None = None,
        hostname: str | None = None,
        subdomain: str | None = None,
        schedulername: str | None = None,
        full_pod_spec: k8s.V1Pod | None = None,
        init_containers: list[k8s.V1Container] | None = None,
        log_events_on_failure: bool = False,
        log_events_on_startup: bool = True,
        do_xcom_push: bool = False,
        pod_template_file: str | None = None,
        pod_template_dict: dict | None = None,
        priority_class_name: str | None = None,
        pod_runtime_info_envs: list[k8s.V1EnvVar] | None = None,
        termination_grace_period: int | None = None,
        configmaps: list[str] | None = None,
        skip_on_exit_code: int | Container[int] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 2,
        log_pod_spec_on_failure: bool = True,
        on_finish_action: str = OnFinishAction.DELETE_POD.value,
        on_kill_action: str = OnKillAction.CANCEL.value,
        is_delete_operator_pod: bool | None = None,
        termination_message_policy: str = "File",
        active_deadline_seconds: int | None = None,
        callbacks: Any = None,
        progress_callback: Callable[[str], None] | None = None,
        logging_interval: int | None = None,
        trigger_kwargs: dict | None = None,
        container_name_log_prefix_enabled: bool = True,
        log_formatter: Callable[[str, str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.on_kill_action = OnKillAction.parse(on_kill_action)
        if callbacks or progress_callback:
            # KPO's callbacks receive its pod client and pod objects, which a TaskRun run
            # does not have on the worker; accepting them silently would drop user code.
            raise ValueError("callbacks and progress_callback are not supported by TaskRunOperator")
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.image = image
        self.name = name
        self.random_name_suffix = random_name_suffix
        self.cmds = cmds or []
        self.arguments = arguments or []
        self.ports = ports or []
        self.volume_mounts = volume_mounts or []
        self.volumes = volumes or []
        self.env_vars = env_vars or []
        self.env_from = env_from or []
        self.secrets = secrets or []
        self.in_cluster = in_cluster
        self.cluster_context = cluster_context
        self.labels = labels or {}
        # The TaskRun name makes every restart reattach; there is nothing to turn off.
        self.reattach_on_restart = True if reattach_on_restart is None else reattach_on_restart
        self.durable = durable
        self.startup_timeout_seconds = startup_timeout_seconds
        self.startup_check_interval_seconds = startup_check_interval_seconds
        self.schedule_timeout_seconds = schedule_timeout_seconds or startup_timeout_seconds
        self.get_logs = get_logs
        self.base_container_name = base_container_name or DEFAULT_BASE_CONTAINER_NAME
        self.base_container_status_polling_interval = base_container_status_polling_interval
        self.init_container_logs = init_container_logs
        self.container_logs = container_logs
        self.image_pull_policy = image_pull_policy
        self.annotations = annotations or {}
        self.container_resources = container_resources
        self.affinity = affinity
        self.config_file = config_file
        self.runtime_class_name = runtime_class_name
        self.node_selector = node_selector or {}
        self.image_pull_secrets = image_pull_secrets
        self.service_account_name = service_account_name
        self.automount_service_account_token = automount_service_account_token
        self.hostnetwork = hostnetwork
        self.host_aliases = host_aliases
        self.tolerations = tolerations or []
        self.security_context = security_context or {}
        self.container_security_context = container_security_context
        self.xcom_sidecar_container_security_context = xcom_sidecar_container_security_context
        self.dnspolicy = dnspolicy
        self.dns_config = dns_config
        self.hostname = hostname
        self.subdomain = subdomain
        self.schedulername = schedulername
        self.full_pod_spec = full_pod_spec
        self.init_containers = init_containers or []
        self.log_events_on_failure = log_events_on_failure
        self.log_events_on_startup = log_events_on_startup
        self.do_xcom_push = do_xcom_push
        self.pod_template_file = pod_template_file
        self.pod_template_dict = pod_template_dict
        self.priority_class_name = priority_class_name
        self.pod_runtime_info_envs = pod_runtime_info_envs or []
        self.termination_grace_period = termination_grace_period
        self.configmaps = configmaps or []
        self.skip_on_exit_code = skip_on_exit_code
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.log_pod_spec_on_failure = log_pod_spec_on_failure
        self.on_finish_action = mapping.on_finish_action(on_finish_action, is_delete_operator_pod)
        self.is_delete_operator_pod = is_delete_operator_pod
        self.termination_message_policy = termination_message_policy
        self.active_deadline_seconds = active_deadline_seconds
        self.logging_interval = logging_interval
        self.trigger_kwargs = trigger_kwargs
        self.container_name_log_prefix_enabled = container_name_log_prefix_enabled
        self.log_formatter = log_formatter
        if xcom_sidecar_container_security_context is not None:
            warnings.warn(
                "xcom_sidecar_container_security_context is set by the TaskRun controller "
                "(--xcom-sidecar-security-context), not per task; ignored",
                UserWarning,
                stacklevel=2,
            )
        if trigger_kwargs:
            warnings.warn(
                "trigger_kwargs configure KubernetesPodTrigger; TaskRunTrigger takes none, ignored",
                UserWarning,
                stacklevel=2,
            )
        self._taskrun_ref: tuple[str, str] | None = None

    # --- templating: the same nested fields as KPO ---------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # As KPO: a dict of env vars becomes V1EnvVar objects first, so names render too.
        if parent is self and isinstance(self.env_vars, dict):
            self.env_vars = convert_env_vars(self.env_vars)
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    def _render_nested_template_fields(
        self,
        content: Any,
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        if id(content) not in seen_oids:
            fields = _NESTED_TEMPLATE_FIELDS.get(type(content))
            if fields:
                seen_oids.add(id(content))
                self._do_render_template_fields(content, fields, context, jinja_env, seen_oids)
                return
        super()._render_nested_template_fields(content, context, jinja_env, seen_oids)

    # --- connection ------------------------------------------------------------------------

    @cached_property
    def hook(self) -> KubernetesHook:
        return KubernetesHook(
            conn_id=self.kubernetes_conn_id,
            in_cluster=self.in_cluster,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
        )

    @cached_property
    def api(self) -> TaskRunApi:
        return TaskRunApi(self.hook.api_client)

    def _namespace(self, template: Mapping[str, Any] | None) -> str:
        """KPO's order: the argument, the pod template's namespace (pod_template_file,
        pod_template_dict, full_pod_spec, merged), the connection's, the in-cluster service
        account's, ``default``."""
        found = (
            self.namespace
            or mapping.template_namespace(template)
            or self.hook.get_namespace()
            or _in_cluster_namespace()
        )
        return str(found or "default")

    # --- the TaskRun -----------------------------------------------------------------------

    def kpo_kwargs(self) -> dict[str, Any]:
        """The (rendered) KubernetesPodOperator arguments that shape the TaskRun."""
        return {arg: getattr(self, arg) for arg in SPEC_ARGS}

    def build_taskrun(self, context: Context | None) -> dict[str, Any]:
        """The TaskRun this task instance runs (no task-instance labels without a context)."""
        kwargs = self.kpo_kwargs()
        template = mapping.pod_template_of(kwargs)
        if context is None:
            # Offline, as KPO's dry run: no connection, so no connection namespace either.
            namespace = self.namespace or mapping.template_namespace(template) or "default"
            body = mapping.build_taskrun(kwargs, name="", namespace=namespace, template=template)
            del body["metadata"]["name"]
            body["metadata"]["generateName"] = mapping.name_head(self.name or self.task_id) + "-"
            return self._with_log_annotations(body)
        ti = context["ti"]
        map_index = getattr(ti, "map_index", None)
        labels = mapping.ti_labels(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=context["run_id"],
            try_number=ti.try_number,
            map_index=map_index,
            airflow_version=airflow_version,
            in_cluster=self.hook.is_in_cluster,
        )
        name = mapping.taskrun_name(
            ti.dag_id, ti.task_id, context["run_id"], map_index, ti.try_number, self.name
        )
        # The TaskRun itself carries the identifying labels too, so `kubectl get trun -l
        # dag_id=...` finds a DAG's runs.
        meta_labels = {k: labels[k] for k in AIRFLOW_IDENTITY_LABELS if k in labels}
        body = mapping.build_taskrun(
            kwargs,
            name=name,
            namespace=self._namespace(template),
            labels=labels,
            metadata_labels=meta_labels,
            template=template,
        )
        return self._with_log_annotations(body)

    def _logged_containers(self, spec: TaskRunSpec) -> list[str]:
        return mapping.logged_containers(self.init_container_logs, self.base_container_name, spec)

    def _with_log_annotations(self, body: dict[str, Any]) -> dict[str, Any]:
        # Not part of the spec hash: a reattach compares specs, and reads the hand-over the
        # TaskRun it finds asks for (an older operator's asks for the hold only).
        spec = TaskRunSpec.model_validate(body["spec"])
        annotations = mapping.log_annotations(self.get_logs, self._logged_containers(spec), spec)
        body["metadata"]["annotations"].update(annotations)
        return body

    def dry_run(self) -> None:
        """Print the TaskRun this operator would create, as YAML."""
        print(yaml.safe_dump(self.build_taskrun(None), sort_keys=False))

    # --- execution -------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        body = self.build_taskrun(context)
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        taskrun, created = self.api.create_or_get(body)
        if created:
            self.log.info("Created TaskRun %s/%s", namespace, name)
        else:
            # A restarted worker finds the TaskRun it created; anything else of that name
            # (another tool's, or made ahead of time to hand over a forged result) is
            # neither waited on, nor cancelled on kill, nor read for a result.
            why = mapping.foreign_because(taskrun, body)
            if why is not None:
                raise AirflowException(
                    f"TaskRun {namespace}/{name} already exists and was not created by this"
                    f" task instance: {why}. If it is a leftover nobody needs, delete it"
                    f" (kubectl delete taskrun -n {namespace} {name}) and clear the task; if"
                    " something else owns that name, give this task another `name`."
                )
            self.log.info("Reattached to existing TaskRun %s/%s", namespace, name)
        self._taskrun_ref = (name, namespace)
        context["ti"].xcom_push(key="taskrun_name", value=name)
        context["ti"].xcom_push(key="pod_namespace", value=namespace)
        if self.deferrable and not finished(taskrun):
            self.defer(
                trigger=TaskRunTrigger(
                    name=name,
                    namespace=namespace,
                    kubernetes_conn_id=self.kubernetes_conn_id,
                    in_cluster=self.in_cluster,
                    config_dict=self._config_dict(),
                    cluster_context=self.cluster_context,
                    on_kill_action=self.on_kill_action.value,
                    # The trigger's watch starts here: no read, and nothing missed.
                    resource_version=taskrun["metadata"].get("resourceVersion"),
                    uid=taskrun["metadata"].get("uid"),
                ),
                method_name="execute_complete",
            )
        taskrun = self._wait_streaming(name, namespace, taskrun)
        return self._finish(context, taskrun)

    def _config_dict(self) -> dict[str, Any] | None:
        # As KPO: config_file, else $KUBECONFIG, travels to the trigger as its content.
        path = self.config_file or os.environ.get("KUBECONFIG")
        if not path:
            return None
        with open(path) as fh:
            data = yaml.safe_load(fh)
        return data if isinstance(data, dict) else None

    def execute_complete(self, context: Context, event: dict[str, Any], **_: Any) -> Any:
        """Resume after the trigger: print the full log, then act on the outcome."""
        name, namespace = event["name"], event["namespace"]
        self._taskrun_ref = (name, namespace)
        if event.get("status") == "error":
            raise AirflowException(f"TaskRun {namespace}/{name}: {event.get('message')}")
        # The trigger sends the finished TaskRun unless it is too large for an event.
        taskrun = event.get("taskrun") or self.api.get(name, namespace)
        uid = (taskrun.get("metadata") or {}).get("uid")
        if event.get("uid") and uid != event["uid"]:
            raise AirflowException(
                f"TaskRun {namespace}/{name} was deleted while the task was deferred, and"
                f" another TaskRun has its name now (uid {uid}, not {event['uid']})"
            )
        self._emit_logs(taskrun, already={})
        return self._finish(context, taskrun)

    def _wait_streaming(
        self, name: str, namespace: str, known: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Wait for the end, following each attempt's log; ``known``: the TaskRun as last
        seen, where the watch starts."""
        printed: dict[str, _Shown] = {}
        streamed: set[str] = set()

        def ready(taskrun: Mapping[str, Any]) -> bool:
            status = mapping.status_of(taskrun)
            pod = status.pod_name
            running = status.phase == Phase.RUNNING and pod and pod not in streamed
            return bool(status.phase in FINISHED_PHASES or (self.get_logs and running))

        try:
            while True:
                taskrun = known = self.api.wait_for(name, namespace, ready, known)
                if finished(taskrun):
                    break
                pod = str(mapping.status_of(taskrun).pod_name)
                streamed.add(pod)
                printed[pod] = self._stream_log(pod, namespace)
        except TaskRunGone as exc:
            raise AirflowException(str(exc)) from None
        self._emit_logs(taskrun, already=printed)
        return taskrun

    def _stream_log(self, pod: str, namespace: str) -> _Shown:
        """Follow the base container's log into the task log; returns what was shown."""
        shown = lines_shown = 0
        pending = b""
        try:
            for chunk in self.api.follow_log(pod, namespace, self.base_container_name):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._log_line(self.base_container_name, line)
                    shown += len(line) + 1
                    lines_shown += 1
        except _NETWORK_ERRORS as exc:
            # A dropped stream is not a task failure: the rest is read once the run ends.
            # Only network errors: Airflow's SIGTERM arrives as an exception that must pass.
            self.log.info("Log stream of pod %s ended early (%s); will catch up", pod, exc)
        return _Shown(size=shown, lines=lines_shown)

    def _log_line(self, container: str, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        if self.log_formatter is not None:
            self.log.info("%s", self.log_formatter(container, text))
        elif self.container_name_log_prefix_enabled:
            self.log.info("[%s] %s", container, text)
        else:
            self.log.info("%s", text)

    def _emit_logs(self, taskrun: Mapping[str, Any], already: Mapping[str, _Shown]) -> None:
        """Show the log not streamed yet, then tell the controller it may delete the pod.

        When the whole log is in the status (taskrun.api.handover), it is printed from there:
        no log read, and no ack, since the controller does not hold the pod for one.
        """
        meta, status = taskrun["metadata"], mapping.status_of(taskrun)
        name, namespace = meta["name"], meta["namespace"]
        pod = status.pod_name
        ack = self.get_logs
        try:
            if not self.get_logs or not pod:
                return
            spec = TaskRunSpec.model_validate(taskrun.get("spec") or {})
            containers = self._logged_containers(spec)
            whole = mapping.whole_log_in_status(taskrun, containers)
            if whole is not None:
                ack = False
                (container,) = containers
                followed = container == self.base_container_name
                skip = already.get(pod, _Shown()).lines if followed else 0
                for line in mapping.lines_after(whole, skip):
                    self._log_line(container, line)
                return
            for index, container in enumerate(containers):
                data = self.api.read_log(pod, namespace, container)
                if data is None:  # 404: the pod is gone (no separate existence check)
                    tail = status.logs.tail if status.logs else None
                    if index == 0 and tail and pod not in already:
                        self.log.info("Pod %s is gone; last lines kept in the TaskRun:", pod)
                        for text in str(tail).splitlines():
                            self._log_line(self.base_container_name, text.encode())
                    return
                skip = (
                    already.get(pod, _Shown()).size if container == self.base_container_name else 0
                )
                for line in data[skip:].splitlines():
                    self._log_line(container, line)
        finally:
            if ack:
                self._ack_logs(name, namespace)

    def _ack_logs(self, name: str, namespace: str) -> None:
        try:
            self.api.patch(
                name,
                namespace,
                {"metadata": {"annotations": {ANNOTATION_LOGS_ACKED: "true"}}},
            )
        except _NETWORK_ERRORS:
            # The controller releases a held pod after its own bound; never fail the task here.
            self.log.warning("Could not acknowledge the logs of TaskRun %s/%s", namespace, name)

    def _finish(self, context: Context, taskrun: Mapping[str, Any]) -> Any:
        meta, status = taskrun["metadata"], mapping.status_of(taskrun)
        name, namespace = meta["name"], meta["namespace"]
        ti = context["ti"]
        if status.pod_name:
            ti.xcom_push(key="pod_name", value=status.pod_name)
        phase = status.phase
        where = f"TaskRun {namespace}/{name} (pod {status.pod_name})"
        if phase == Phase.SUCCEEDED:
            if not self.do_xcom_push:
                return None
            raw = status.result
            if raw in (None, ""):
                return None
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise AirflowException(f"{where}: result is not JSON: {exc}") from None
        if phase == Phase.SKIPPED:
            raise AirflowSkipException(
                f"{where} skipped: exit code {status.exit_code} is in skip_on_exit_code"
            )
        self._report_failure(taskrun)
        message = f"{where} {phase}: {status.reason}: {status.message}"
        tail = status.logs.tail if status.logs else None
        if tail:
            message += f"\n--- last lines of {self.base_container_name} ---\n{tail}"
        raise AirflowException(message)

    def _report_failure(self, taskrun: Mapping[str, Any]) -> None:
        if self.log_events_on_failure:
            for event in mapping.status_of(taskrun).warnings or []:
                self.log.warning(
                    "Pod event %s (x%s): %s",
                    event.reason,
                    1 if event.count is None else event.count,
                    event.message,
                )
        if self.log_pod_spec_on_failure:
            self.log.info("TaskRun spec:\n%s", yaml.safe_dump(taskrun.get("spec"), sort_keys=False))

    # --- kill ------------------------------------------------------------------------------

    def on_kill(self) -> None:
        if self._taskrun_ref is None or self.on_kill_action is OnKillAction.KEEP_POD:
            return
        name, namespace = self._taskrun_ref
        try:
            kill_taskrun(self.api, name, namespace, self.on_kill_action)
            self.log.info("on_kill: %s TaskRun %s/%s", self.on_kill_action, namespace, name)
        except Exception:
            self.log.exception(
                "on_kill: could not %s TaskRun %s/%s", self.on_kill_action, namespace, name
            )


def _in_cluster_namespace() -> str | None:
    # KPO reads the same file, and treats an empty one as absent.
    if _IN_CLUSTER_NAMESPACE.exists():
        return _IN_CLUSTER_NAMESPACE.read_text().strip() or None
    return None


def kill_taskrun(api: TaskRunApi, name: str, namespace: str, action: OnKillAction) -> None:
    """Apply on_kill_action: cancel (spec.cancel) or delete the TaskRun."""
    if action.deletes:
        api.delete(name, namespace)
    elif action is OnKillAction.CANCEL:
        api.patch(name, namespace, mapping.CANCEL_PATCH)


_NESTED_TEMPLATE_FIELDS: dict[type, tuple[str, ...]] = {
    k8s.V1EnvVar: ("value", "name"),
    k8s.V1ResourceRequirements: ("limits", "requests"),
    k8s.V1Volume: ("name", "persistent_volume_claim", "config_map"),
    k8s.V1VolumeMount: ("name", "sub_path"),
    k8s.V1PersistentVolumeClaimVolumeSource: ("claim_name",),
    k8s.V1ConfigMapVolumeSource: ("name",),
    k8s.V1EnvFromSource: ("config_map_ref",),
    k8s.V1ConfigMapEnvSource: ("name",),
}
