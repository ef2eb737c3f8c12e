"""The simulated kubelet (and scheduler) of devcluster's one node.

It watches pods, schedules them onto its node, and plays each pod's scenario
(devcluster/scenario.py), reporting status, events and logs in the shapes a
real kubelet (1.29+, native sidecars) produces. Timings are real seconds.

Node lost (scenario `nodeLostAfterSeconds`): the pod's containers freeze, its
Ready and ContainersReady conditions go False with reason NodeLost (as the node
lifecycle controller reports), then the pod is marked Failed with reason NodeLost
and a DisruptionTarget condition DeletionByPodGC (as the pod GC does). Container
states stay as last reported; a later delete removes the pod at once, as the pod
GC force-deletes pods of a vanished node. The Node object itself stays Ready:
other pods keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import posixpath
import re
import shlex
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, cast

from devcluster import shell
from devcluster.errors import ApiError, bad_request
from devcluster.logs import LogStore, split_lines
from devcluster.resources import EVENTS, LEASES, NODES, PODS
from devcluster.scenario import (
    IMAGE_INVALID_NAME,
    IMAGE_NEVER_PULL,
    SCENARIO_ANNOTATION,
    ContainerScenario,
    Scenario,
    ScenarioError,
    pod_scenario,
)
from taskrun.api import (
    INLINE_RESULT_MAX_BYTES,
    XCOM_INLINE_MAX_ENV,
    XCOM_RESULT_PATH,
    XCOM_SIDECAR_NAME,
)

log = logging.getLogger("devcluster.kubelet")

NODE_NAME = "devcluster-node"
NODE_IP = "172.18.0.2"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_GRACE_SECONDS = 30
LEASE_NAMESPACE = "kube-node-lease"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"

# pkg/kubelet/container: MaxContainerTerminationMessageLength and friends.
TERMINATION_MESSAGE_MAX = 4096
POD_TERMINATION_MESSAGES_MAX = 12 * 1024
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048

SIGTERM_EXIT = 143
SIGKILL_EXIT = 137
SIGINT_EXIT = 130

NOT_HELPFUL = "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
UNKNOWN_STATUS_MESSAGE = "The container could not be located when the pod was terminated"

_REFERENCE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


class Store(Protocol):
    """The part of devcluster.store.Store the kubelet uses."""

    async def get(self, key: Any, namespace: str | None, name: str) -> dict[str, Any]: ...
    async def list(
        self,
        key: Any,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...
    async def create(
        self, key: Any, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def patch(
        self,
        key: Any,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]: ...
    async def delete(
        self,
        key: Any,
        namespace: str | None,
        name: str,
        grace_period_seconds: int | None = None,
        *,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None: ...
    async def bind(self, namespace: str, name: str, node_name: str) -> Any: ...
    def watch(self, key: Any, namespace: str | None = None) -> Any: ...


def now_rfc3339() -> str:
    """metav1.Time: seconds precision, UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """metav1.MicroTime, as events.k8s.io/v1 eventTime and Lease renewTime carry it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it ("1.5s", "12.345ms", "0s")."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    if ns >= 60 * 10**9:
        hours, rest = divmod(ns, 3600 * 10**9)
        minutes, rest = divmod(rest, 60 * 10**9)
        prefix = (f"{hours}h" if hours else "") + f"{minutes}m"
        return prefix + f"{rest // 10**9}.{rest % 10**9:09d}".rstrip("0").rstrip(".") + "s"
    for unit, size in (("s", 10**9), ("ms", 10**6), ("\u00b5s", 10**3)):
        if ns >= size:
            whole, frac = divmod(ns, size)
            digits = len(str(size)) - 1
            text = f"{whole}.{frac:0{digits}d}".rstrip("0").rstrip(".") if frac else str(whole)
            return text + unit
    return f"{ns}ns"


def normalize_image(image: str) -> str:
    """The image as the runtime reports it: docker.io/library/busybox:latest."""
    name, _, digest = image.partition("@")
    first, slash, _ = name.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + ("library/" if not slash else "") + name
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def image_id(image: str) -> str:
    """A stable fake digest reference for an image."""
    normalized = normalize_image(image)
    repo = normalized.split("@")[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[: repo.rfind(":")]
    return f"{repo}@sha256:{hashlib.sha256(normalized.encode()).hexdigest()}"


def qos_class(spec: dict[str, Any]) -> str:
    """The pod's QoS class, as the API server computes it."""
    containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = {**limits, **(res.get("requests") or {})}
        if any(r in requests or r in limits for r in ("cpu", "memory")):
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or str(requests.get(r)) != str(limits[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _go_list(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def _matches_expression(expr: dict[str, Any], value: str | None) -> bool:
    op = expr.get("operator")
    values = expr.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_matches(pod_spec: dict[str, Any], node: dict[str, Any]) -> bool:
    """nodeSelector and required node affinity against one node."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": (node.get("metadata") or {}).get("name")}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue  # an empty term matches nothing
        if all(_matches_expression(e, labels.get(e.get("key"))) for e in exprs) and all(
            _matches_expression(e, fields.get(e.get("key"))) for e in field_exprs
        ):
            return True
    return False


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def untolerated_taint(pod_spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    """The first NoSchedule/NoExecute taint of the node the pod does not tolerate."""
    tolerations = pod_spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(
            tolerations, taint
        ):
            return taint
    return None


_SUFFIXES = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: Any) -> float:
    """A Kubernetes resource.Quantity as a number (cpu in cores, memory in bytes)."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"invalid quantity {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def pod_requests(pod_spec: dict[str, Any]) -> dict[str, float]:
    """The pod's effective requests: what runs together, or the largest init container."""

    def requests(c: dict[str, Any]) -> dict[str, float]:
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return {k: parse_quantity(v) for k, v in merged.items()}

    def add(total: dict[str, float], more: dict[str, float]) -> None:
        for k, v in more.items():
            total[k] = total.get(k, 0.0) + v

    sidecars: dict[str, float] = {}
    effective: dict[str, float] = {}
    for c in pod_spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":
            add(sidecars, requests(c))
        else:
            during = dict(sidecars)
            add(during, requests(c))
            for k, v in during.items():
                effective[k] = max(effective.get(k, 0.0), v)
    running = dict(sidecars)
    for c in pod_spec.get("containers") or []:
        add(running, requests(c))
    for k, v in running.items():
        effective[k] = max(effective.get(k, 0.0), v)
    return effective


def insufficient_resources(pod_spec: dict[str, Any], node: dict[str, Any]) -> list[str]:
    """Resource names the pod requests more of than the node can allocate."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    try:
        wanted = pod_requests(pod_spec)
    except ValueError:
        return []  # the API server validates quantities; nothing to add here
    return [
        name
        for name, amount in sorted(wanted.items())
        if amount > 0 and amount > parse_quantity(allocatable.get(name, "0"))
    ]


def scheduling_failure(pod_spec: dict[str, Any], node: dict[str, Any]) -> str | None:
    """The default scheduler's FailedScheduling message for this pod, or None if it fits."""
    if not node_matches(pod_spec, node):
        return (
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
            + NOT_HELPFUL
        )
    taint = untolerated_taint(pod_spec, node)
    if taint is not None:
        shown = f"{taint.get('key')}: {taint.get('value')}" if taint.get("value") else taint["key"]
        return (
            f"0/1 nodes are available: 1 node(s) had untolerated taint {{{shown}}}. " + NOT_HELPFUL
        )
    short = insufficient_resources(pod_spec, node)
    if short:
        return (
            "0/1 nodes are available: "
            + ", ".join(f"1 Insufficient {name}" for name in short)
            + ". preemption: 0/1 nodes are available: 1 No preemption victims found for "
            "incoming pod."
        )
    return None


def termination_message(
    file_bytes: bytes | None,
    *,
    policy: str,
    failed: bool,
    log_tail: Callable[[], bytes],
    budget: int,
) -> str:
    """The terminated state's message, capped the way the kubelet caps it."""
    # The kubelet keeps the file's last 4096 bytes, then the status manager keeps the
    # first (12 KiB / number of containers) bytes of that.
    data = (file_bytes or b"")[-TERMINATION_MESSAGE_MAX:]
    if not data and failed and policy == "FallbackToLogsOnError":
        data = log_tail()[-FALLBACK_LOG_BYTES:]
    return go_string(data[:budget])


def go_string(data: bytes) -> str:
    """``data`` as Go's encoding/json writes a string that holds it: each byte that is not
    part of valid UTF-8 becomes U+FFFD (the kubelet's status write does this to
    termination messages)."""
    out: list[str] = []
    i = 0
    while i < len(data):
        try:
            out.append(data[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as err:
            out.append(data[i : i + err.start].decode("utf-8"))
            # Go's decoder gives up on one byte at a time, Python's on a maximal prefix.
            out.append("\ufffd")
            i += err.start + 1
    return "".join(out)


def _scheduling_inputs(pod: dict[str, Any]) -> tuple[Any, ...]:
    spec = pod.get("spec") or {}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return (
        spec.get("tolerations"),
        spec.get("nodeSelector"),
        spec.get("affinity"),
        annotations.get(SCENARIO_ANNOTATION),
    )


_CONDITION_ORDER = (
    "DisruptionTarget",
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)

_ROLE_INIT = "init"
_ROLE_SIDECAR = "sidecar"
_ROLE_REGULAR = "regular"


@dataclass(eq=False)
class _Container:
    name: str
    role: str
    spec: dict[str, Any]
    scenario: ContainerScenario
    state: dict[str, Any]
    fs: dict[str, bytes] = field(default_factory=dict)
    container_id: str = ""
    ready: bool = False
    started: bool = False
    process: asyncio.Task[None] | None = None
    signalled: asyncio.Event = field(default_factory=asyncio.Event)
    got_term: bool = False
    got_kill: bool = False
    got_int: bool = False

    @property
    def image(self) -> str:
        return str(self.spec.get("image") or "")

    @property
    def field_path(self) -> str:
        kind = "containers" if self.role == _ROLE_REGULAR else "initContainers"
        return f"spec.{kind}{{{self.name}}}"

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> dict[str, Any] | None:
        return self.state.get("terminated")

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": normalize_image(self.image) if self.image else "",
            "imageID": image_id(self.image) if self.container_id else "",
            "ready": self.ready,
            "restartCount": 0,
            "started": self.started,
            "state": {k: dict(v) for k, v in self.state.items()},
            "lastState": {},
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


class _Gone(Exception):
    """The pod object no longer exists."""


class Kubelet:
    """One node's kubelet (and, with ``schedule``, its scheduler); `run()` until cancelled.

    The store is the transport: devcluster's in-process Store, or an HttpStore
    (devcluster/httpstore.py) talking to any API server. With ``schedule`` off the
    kubelet only sees pods bound to its node (fieldSelector spec.nodeName), as a real
    kubelet does, and leaves binding to the cluster's scheduler. ``lease_renew_seconds``
    keeps the node Ready through a Lease in kube-node-lease, for a cluster whose node
    lifecycle controller watches heartbeats.
    """

    def __init__(
        self,
        store: Store,
        node_name: str = NODE_NAME,
        *,
        taints: list[dict[str, Any]] | None = None,
        image_pull_backoff: float = 1.0,
        image_pull_backoff_max: float = 10.0,
        schedule: bool = True,
        node_ip: str = NODE_IP,
        kubelet_port: int = 10250,
        lease_renew_seconds: float | None = None,
        max_pods: int = 110,
    ) -> None:
        self.store = store
        self.node_name = node_name
        # The Node's pods capacity (the kubelet's --max-pods): kube-scheduler binds no more
        # non-terminal pods than this to the node.
        self.max_pods = max_pods
        self.schedule = schedule
        self.node_ip = node_ip
        self.kubelet_port = kubelet_port
        self.lease_renew_seconds = lease_renew_seconds
        self.logs = LogStore()
        self.taints = list(taints or [])
        self.image_pull_backoff = image_pull_backoff
        self.image_pull_backoff_max = image_pull_backoff_max
        self.node: dict[str, Any] = {}
        self._runners: dict[str, _PodRunner] = {}
        self._ips = itertools.count(2)
        self._event_names = itertools.count()
        # Recorded events for aggregation: pod uid -> (reason, message, ...) -> (name, count);
        # by pod first, so a pod's removal drops its entries without scanning everyone's.
        self._events: dict[Any, dict[tuple[Any, ...], tuple[str, int]]] = {}
        self._listening = asyncio.Event()

    # -- exec --------------------------------------------------------------

    def exec_check(self, namespace: str, pod: str, container: str) -> None:
        """Raise a 400 unless the container is running (asked before the upgrade)."""
        self._runner(namespace, pod).running_container(container)

    def exec(self, namespace: str, pod: str, container: str, command: list[str]) -> shell.Outcome:
        """Run ``command`` in a container of a pod this kubelet runs (pods/exec)."""
        return self._runner(namespace, pod).exec(container, command)

    def runs(self, namespace: str, pod: str) -> bool:
        """Whether a pod of that name is on this node (its logs can be asked for)."""
        return any(r.ns == namespace and r.name == pod for r in self._runners.values())

    def _runner(self, namespace: str, pod: str) -> _PodRunner:
        for runner in self._runners.values():
            if runner.ns == namespace and runner.name == pod and not runner.lost:
                return runner
        raise bad_request(f'pod "{pod}" is not running on this node')

    # -- node --------------------------------------------------------------

    def _node_object(self) -> dict[str, Any]:
        now = now_rfc3339()
        resources = {
            "cpu": "8",
            "memory": "32Gi",
            "pods": str(self.max_pods),
            "ephemeral-storage": "100Gi",
            "hugepages-2Mi": "0",
        }

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        spec: dict[str, Any] = {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]}
        if self.taints:
            spec["taints"] = self.taints
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                },
                "annotations": {"devcluster.taskrun.dev/simulated": "true"},
            },
            "spec": spec,
            "status": {
                "capacity": dict(resources),
                "allocatable": dict(resources),
                "conditions": [
                    condition(
                        "MemoryPressure",
                        "False",
                        "KubeletHasSufficientMemory",
                        "kubelet has sufficient memory available",
                    ),
                    condition(
                        "DiskPressure",
                        "False",
                        "KubeletHasNoDiskPressure",
                        "kubelet has no disk pressure",
                    ),
                    condition(
                        "PIDPressure",
                        "False",
                        "KubeletHasSufficientPID",
                        "kubelet has sufficient PID available",
                    ),
                    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                "addresses": [
                    {"type": "InternalIP", "address": self.node_ip},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                "nodeInfo": {
                    "machineID": hashlib.md5(self.node_name.encode()).hexdigest(),
                    "systemUUID": "00000000-0000-0000-0000-000000000000",
                    "bootID": "00000000-0000-0000-0000-000000000001",
                    "kernelVersion": "6.1.0-devcluster",
                    "osImage": "devcluster (simulated node, no containers run)",
                    "containerRuntimeVersion": "devcluster://0.1.0",
                    "kubeletVersion": "v1.37.0-devcluster",
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }

    async def _ensure_node(self) -> None:
        wanted = self._node_object()
        try:
            self.node = await self.store.get(NODES, None, self.node_name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            try:
                self.node = await self.store.create(NODES, None, wanted)
            except ApiError as create_exc:
                if create_exc.code != 409:
                    raise
                self.node = await self.store.get(NODES, None, self.node_name)
        if (self.node.get("status") or {}).get("conditions") != wanted["status"]["conditions"]:
            # A create may drop status (status subresource); report it the kubelet's way.
            self.node = await self.store.patch(
                NODES, None, self.node_name, {"status": wanted["status"]}, subresource="status"
            )
        taints = (self.node.get("spec") or {}).get("taints") or []
        kept = [t for t in taints if t.get("key") != NOT_READY_TAINT]
        if len(kept) != len(taints):
            # The API server's NodeTaint admission taints every new Node not-ready; the node
            # lifecycle controller lifts it once the node reports Ready. A cluster may run
            # without that controller (realcluster does), so the simulated node lifts it.
            self.node = await self.store.patch(
                NODES, None, self.node_name, {"spec": {"taints": kept or None}}
            )

    # -- pods --------------------------------------------------------------

    async def _renew_lease(self) -> None:
        """The node's heartbeat: a Lease in kube-node-lease, renewed as the kubelet does."""
        assert self.lease_renew_seconds is not None
        duration = max(1, round(self.lease_renew_seconds * 4))
        uid = (self.node.get("metadata") or {}).get("uid")
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": duration,
            "renewTime": now_micro(),
        }
        try:
            try:
                await self.store.patch(LEASES, LEASE_NAMESPACE, self.node_name, {"spec": spec})
            except ApiError as exc:
                if exc.code != 404:
                    raise
                meta: dict[str, Any] = {"name": self.node_name, "namespace": LEASE_NAMESPACE}
                if uid:
                    meta["ownerReferences"] = [
                        {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": uid}
                    ]
                lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
                await self.store.create(
                    LEASES, LEASE_NAMESPACE, {**lease, "metadata": meta, "spec": spec}
                )
        except Exception as exc:
            # A missed renewal is what a real node lives with too: the next one may succeed.
            log.warning("kubelet: renewing the node lease failed: %r", exc)

    async def _keep_lease(self) -> None:
        assert self.lease_renew_seconds is not None
        while True:
            await asyncio.sleep(self.lease_renew_seconds)
            await self._renew_lease()

    def _pod_selector(self) -> str | None:
        # A kubelet sees only its own pods; a kubelet that also schedules must see all.
        return None if self.schedule else f"spec.nodeName={self.node_name}"

    async def _list_pods(self) -> tuple[list[dict[str, Any]], str | None]:
        listing = getattr(self.store, "list_versioned", None)
        if callable(listing):
            items, version = await listing(PODS, field_selector=self._pod_selector())
            return items, version
        return await self.store.list(PODS), None

    async def run(self) -> None:
        """Register the node, then list and watch pods until cancelled."""
        await self._ensure_node()
        lease = None
        if self.lease_renew_seconds is not None:
            await self._renew_lease()  # held before the node reports itself listening
            lease = asyncio.create_task(self._keep_lease(), name="kubelet:lease")
        try:
            while True:
                try:
                    await self._list_and_watch()
                except ApiError as exc:
                    if exc.code != 410:
                        log.warning("kubelet: pod watch failed (%s), listing again", exc)
                        await asyncio.sleep(1.0)
                except Exception as exc:
                    # A remote API server restarting or a dropped connection: pods keep
                    # running, as on a real node, and the next list catches up.
                    log.warning("kubelet: pod watch broke (%r), listing again", exc)
                    await asyncio.sleep(1.0)
                log.info("kubelet: pod watch ended, listing again")
        finally:
            if lease is not None:
                lease.cancel()
            runners = list(self._runners.values())
            self._runners.clear()
            for runner in runners:
                runner.task.cancel()
            await asyncio.gather(*(r.task for r in runners), return_exceptions=True)

    async def _list_and_watch(self) -> None:
        pods, resource_version = await self._list_pods()
        for pod in pods:
            self._dispatch("ADDED", pod)
        listed = {(p.get("metadata") or {}).get("uid") for p in pods}
        for uid in [u for u in self._runners if u not in listed]:
            self._dispatch("DELETED", self._runners[uid].pod)
        self._listening.set()
        async for kind, pod in self._watch(resource_version):
            self._dispatch(kind, pod)

    def _watch(self, resource_version: str | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        # Resuming from the version read before the list misses no pod created in
        # between; the plain watch() of the Store protocol is the fallback.
        watch_events = getattr(self.store, "watch_events", None)
        if resource_version is not None and callable(watch_events):
            return cast(
                AsyncIterator[tuple[str, dict[str, Any]]],
                watch_events(
                    PODS, resource_version=resource_version, field_selector=self._pod_selector()
                ),
            )
        return cast(AsyncIterator[tuple[str, dict[str, Any]]], self.store.watch(PODS))

    async def wait_listening(self) -> None:
        """Until the first list was dispatched (tests and DevCluster start-up)."""
        await self._listening.wait()

    def _dispatch(self, kind: str, pod: dict[str, Any]) -> None:
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return  # bookmarks and the like carry no pod
        meta = pod.get("metadata") or {}
        uid = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
        runner = self._runners.get(uid)
        if kind == "DELETED":
            if runner is not None:
                self._runners.pop(uid, None)
                runner.task.cancel()
            self.logs.forget(meta.get("namespace", ""), meta.get("name", ""))
            self._events.pop(uid, None)
            return
        if runner is not None:
            runner.update(pod)
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if (node and node != self.node_name) or (not node and not self.schedule):
            return
        runner = _PodRunner(self, pod)
        self._runners[uid] = runner
        runner.task = asyncio.create_task(runner.run(), name=f"kubelet:{meta.get('name')}")

    def _next_ip(self) -> str:
        n = next(self._ips) % (254 * 256)  # stays inside the node's 10.244.0.0/16 pod range
        return f"10.244.{n // 254}.{n % 254 + 1}"

    # -- events ------------------------------------------------------------

    async def event(
        self,
        pod: dict[str, Any],
        reason: str,
        message: str,
        *,
        warning: bool = False,
        field_path: str | None = None,
        component: str = "kubelet",
    ) -> None:
        """Record an Event on the pod, aggregating repeats like the event recorder."""
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace", "default")
        kind = "Warning" if warning else "Normal"
        key = (reason, message, kind, field_path, component)
        recorded = self._events.setdefault(meta.get("uid"), {})
        now = now_rfc3339()
        try:
            scheduler = component == "default-scheduler"
            if key in recorded:
                name, count = recorded[key]
                recorded[key] = (name, count + 1)
                repeat: dict[str, Any] = {"count": count + 1, "lastTimestamp": now}
                if scheduler:
                    repeat = {"series": {"count": count + 1, "lastObservedTime": now_micro()}}
                await self.store.patch(EVENTS, ns, name, repeat)
                return
            name = f"{meta.get('name')}.{time.time_ns() + next(self._event_names):x}"
            involved: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": ns,
                "name": meta.get("name"),
                "uid": meta.get("uid"),
            }
            if meta.get("resourceVersion"):
                involved["resourceVersion"] = meta["resourceVersion"]
            if field_path:
                involved["fieldPath"] = field_path
            recorded[key] = (name, 1)
            event: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": kind,
            }
            if scheduler:
                # kube-scheduler records through events.k8s.io/v1: no source, no count or
                # timestamps, an eventTime and an action (as read back through core v1).
                event.update(
                    source={},
                    eventTime=now_micro(),
                    action="Scheduling" if warning else "Binding",
                    reportingComponent=component,
                    reportingInstance=f"{component}-{self.node_name}",
                )
            else:
                event.update(
                    source={"component": component, "host": self.node_name},
                    count=1,
                    firstTimestamp=now,
                    lastTimestamp=now,
                    reportingComponent=component,
                    reportingInstance=self.node_name,
                )
            await self.store.create(EVENTS, ns, event)
        except ApiError as exc:
            # Events are best effort, as in the real recorder.
            log.debug("kubelet: event %s on %s/%s: %s", reason, ns, meta.get("name"), exc)


class _PodRunner:
    """Plays one pod's scenario from scheduling to removal."""

    task: asyncio.Task[None]

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any]) -> None:
        self.k = kubelet
        self.pod = pod
        meta = pod.get("metadata") or {}
        self.ns: str = meta.get("namespace", "default")
        self.name: str = meta.get("name", "")
        self.deleting = asyncio.Event()
        self._spec_changed = asyncio.Event()
        self._changed = asyncio.Event()
        self.containers: list[_Container] = []
        self.volumes: dict[str, dict[str, bytes]] = {}
        self.conditions: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}
        self.phase_override: str | None = None
        self.terminal = False
        self.sandbox = False
        self.lost = False
        self._publish_lock = asyncio.Lock()
        self._lifecycle_task: asyncio.Task[None] | None = None
        self._published: dict[str, Any] | None = None
        self.update(pod)

    @property
    def spec(self) -> dict[str, Any]:
        return self.pod.get("spec") or {}

    def update(self, pod: dict[str, Any]) -> None:
        if (pod.get("spec") or {}).get("activeDeadlineSeconds") != self.spec.get(
            "activeDeadlineSeconds"
        ):
            self._spec_changed.set()
        if _scheduling_inputs(pod) != _scheduling_inputs(self.pod):
            self._changed.set()
        self.pod = pod
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.deleting.set()

    async def event(
        self, reason: str, message: str, c: _Container | None = None, **kw: Any
    ) -> None:
        await self.k.event(self.pod, reason, message, field_path=c.field_path if c else None, **kw)

    # -- the whole life ----------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except _Gone:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: pod %s/%s", self.ns, self.name)
        finally:
            # Whatever ended this runner (the pod's DELETED event, the kubelet stopping),
            # nothing of the pod may keep running.
            for task in [self._lifecycle_task, *(c.process for c in self.containers)]:
                if task is not None and not task.done():
                    task.cancel()

    async def _run(self) -> None:
        phase = (self.pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            await self._remove_when_deleted()
            return
        while not self.spec.get("nodeName") and not await self._schedule():
            # The scheduler tries again when the pod changes (an added toleration, a new
            # scenario annotation); a deleted unbound pod is removed by the API server.
            changed = asyncio.create_task(self._changed.wait())
            deleted = asyncio.create_task(self.deleting.wait())
            await asyncio.wait([changed, deleted], return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            deleted.cancel()
            if self.deleting.is_set():
                await self._remove()
                return
        try:
            scenario = pod_scenario(self.pod)
        except ScenarioError as exc:
            await self._bad_scenario(exc)
            await self._remove_when_deleted()
            return
        self._build(scenario)
        self.extra["startTime"] = now_rfc3339()
        self.extra["hostIP"] = self.k.node_ip
        self.extra["hostIPs"] = [{"ip": self.k.node_ip}]
        self.extra["qosClass"] = (self.pod.get("status") or {}).get("qosClass") or qos_class(
            self.spec
        )

        lifecycle = self._lifecycle_task = asyncio.create_task(self._lifecycle())
        interrupts: dict[asyncio.Task[Any], str] = {
            asyncio.create_task(self.deleting.wait()): "delete"
        }
        interrupts[asyncio.create_task(self._deadline_passed())] = "deadline"
        if scenario.evict_after_seconds is not None:
            interrupts[asyncio.create_task(asyncio.sleep(scenario.evict_after_seconds))] = "evict"
        if scenario.node_lost_after_seconds is not None:
            interrupts[asyncio.create_task(asyncio.sleep(scenario.node_lost_after_seconds))] = (
                "lost"
            )
        try:
            done, _ = await asyncio.wait(
                [lifecycle, *interrupts], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for t in interrupts:
                t.cancel()
        if lifecycle in done:
            lifecycle.result()
            await self._remove_when_deleted()
            return
        lifecycle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lifecycle
        # The first interrupt wins; the deletion one is checked last so a deadline
        # that fired together with a delete still reports DeadlineExceeded.
        fired = {interrupts[t] for t in done if t in interrupts}
        if "lost" in fired:
            await self._node_lost()
        elif "evict" in fired:
            await self._evict()
        elif "deadline" in fired:
            await self._deadline()
        else:
            await self._graceful_delete()
            return
        await self._remove_when_deleted()

    async def _deadline_passed(self) -> None:
        """Return once activeDeadlineSeconds (which may be changed while running) is over."""
        started = asyncio.get_running_loop().time()
        while True:
            self._spec_changed.clear()
            deadline = self.spec.get("activeDeadlineSeconds")
            if isinstance(deadline, (int, float)) and not isinstance(deadline, bool):
                remaining = started + deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._spec_changed.wait(), remaining)
            else:
                await self._spec_changed.wait()

    async def _remove_when_deleted(self) -> None:
        await self.deleting.wait()
        if not self.terminal and not self.lost and self.containers:
            await self._graceful_delete()
            return
        await self._remove()

    async def _remove(self) -> None:
        # As the kubelet's status manager: grace 0, and only the pod this runner played
        # (a pod of the same name created since is someone else's).
        uid = (self.pod.get("metadata") or {}).get("uid")
        with contextlib.suppress(ApiError):
            await self.k.store.delete(
                PODS,
                self.ns,
                self.name,
                grace_period_seconds=0,
                preconditions={"uid": uid} if uid else None,
            )

    # -- scheduling --------------------------------------------------------

    async def _schedule(self) -> bool:
        self._changed.clear()
        if (self.spec.get("schedulerName") or "default-scheduler") != "default-scheduler":
            return False  # another scheduler's pod: the default scheduler leaves it alone
        try:
            unschedulable = pod_scenario(self.pod).unschedulable
        except ScenarioError:
            unschedulable = None  # the kubelet reports it once the pod is bound
        message = unschedulable or scheduling_failure(self.spec, self.k.node)
        if message:
            self._set_condition("PodScheduled", "False", "Unschedulable", message)
            self.phase_override = "Pending"
            await self._patch_status(
                {"phase": "Pending", "conditions": [self.conditions["PodScheduled"]]}
            )
            await self.event(
                "FailedScheduling", message, warning=True, component="default-scheduler"
            )
            return False
        try:
            await self.k.store.bind(self.ns, self.name, self.k.node_name)
        except ApiError as exc:
            if exc.code == 404:
                raise _Gone from None
            raise
        self.phase_override = None
        self._set_condition("PodScheduled", "True")
        await self.event(
            "Scheduled",
            f"Successfully assigned {self.ns}/{self.name} to {self.k.node_name}",
            component="default-scheduler",
        )
        return True

    # -- containers --------------------------------------------------------

    def _build(self, scenario: Scenario) -> None:
        spec = self.spec
        has_init = bool(spec.get("initContainers"))
        default_wait = {
            "waiting": {"reason": "PodInitializing" if has_init else "ContainerCreating"}
        }
        for v in spec.get("volumes") or []:
            self.volumes.setdefault(v.get("name", ""), {})
        for c in spec.get("initContainers") or []:
            role = _ROLE_SIDECAR if c.get("restartPolicy") == "Always" else _ROLE_INIT
            self.containers.append(
                _Container(
                    c["name"],
                    role,
                    c,
                    scenario.for_container(c["name"], is_base=False),
                    dict(default_wait),
                )
            )
        for i, c in enumerate(spec.get("containers") or []):
            self.containers.append(
                _Container(
                    c["name"],
                    _ROLE_REGULAR,
                    c,
                    scenario.for_container(c["name"], is_base=i == 0),
                    dict(default_wait),
                )
            )

    def _of(self, *roles: str) -> list[_Container]:
        return [c for c in self.containers if c.role in roles]

    async def _lifecycle(self) -> None:
        self.sandbox = True
        self.extra["podIP"] = self.k.node_ip if self.spec.get("hostNetwork") else self.k._next_ip()
        self.extra["podIPs"] = [{"ip": self.extra["podIP"]}]
        await self.publish()
        for c in self._of(_ROLE_INIT, _ROLE_SIDECAR):
            await self._start(c)
            if c.role == _ROLE_INIT:
                assert c.process is not None
                await asyncio.shield(c.process)
                if (c.terminated or {}).get("exitCode") != 0:
                    await self._finish()
                    return
        await asyncio.gather(*(self._start_and_wait(c) for c in self._of(_ROLE_REGULAR)))
        await self._stop_sidecars(self._grace_period())
        await self._finish()

    async def _start_and_wait(self, c: _Container) -> None:
        await self._start(c)
        assert c.process is not None
        await asyncio.shield(c.process)

    def _grace_period(self) -> float:
        grace = self.spec.get("terminationGracePeriodSeconds")
        return float(DEFAULT_GRACE_SECONDS if grace is None else grace)

    async def _set_waiting(self, c: _Container, reason: str, message: str | None = None) -> None:
        waiting: dict[str, Any] = {"reason": reason}
        if message is not None:
            waiting["message"] = message
        c.state = {"waiting": waiting}
        await self.publish()

    async def _pull(self, c: _Container) -> None:
        """Return once the image is present; block (in back-off) if it never will be."""
        image = c.image
        policy = c.spec.get("imagePullPolicy") or (
            "Always"
            if "@" not in image and normalize_image(image).endswith(":latest")
            else "IfNotPresent"
        )
        mode = c.scenario.image
        if mode == IMAGE_INVALID_NAME or not _REFERENCE.match(image):
            message = (
                f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                f'"{image}": invalid reference format'
            )
            await self._set_waiting(c, "InvalidImageName", message)
            await self.event("InspectFailed", message, c, warning=True)
            await self.event("Failed", "Error: InvalidImageName", c, warning=True)
            await asyncio.Future()
        if mode == IMAGE_NEVER_PULL or (policy == "Never" and c.scenario.image_pull_error):
            message = f'Container image "{image}" is not present with pull policy of Never'
            await self._set_waiting(c, "ErrImageNeverPull", message)
            await self.event("ErrImageNeverPull", message, c, warning=True)
            await self.event("Failed", "Error: ErrImageNeverPull", c, warning=True)
            await asyncio.Future()
        error = c.scenario.image_pull_error
        if error is not None:
            backoff = self.k.image_pull_backoff
            while True:
                await self.event("Pulling", f'Pulling image "{image}"', c)
                await self.event(
                    "Failed", f'Failed to pull image "{image}": {error}', c, warning=True
                )
                await self.event("Failed", "Error: ErrImagePull", c, warning=True)
                await self._set_waiting(c, "ErrImagePull", error)
                await asyncio.sleep(backoff / 2)
                await self._set_waiting(
                    c,
                    "ImagePullBackOff",
                    f'Back-off pulling image "{image}": ErrImagePull: {error}',
                )
                await self.event("BackOff", f'Back-off pulling image "{image}"', c)
                await self.event("Failed", "Error: ImagePullBackOff", c, warning=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.k.image_pull_backoff_max)
        if policy == "Always":
            await self.event("Pulling", f'Pulling image "{image}"', c)
            started = time.monotonic()
            await asyncio.sleep(c.scenario.start_delay_seconds)
            took = go_duration(time.monotonic() - started)
            size = 1024 * 1024 + int(hashlib.sha256(image.encode()).hexdigest()[:5], 16)
            await self.event(
                "Pulled",
                f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                f"Image size: {size} bytes.",
                c,
            )
        else:
            await asyncio.sleep(c.scenario.start_delay_seconds)
            await self.event("Pulled", f'Container image "{image}" already present on machine', c)

    async def _start(self, c: _Container) -> None:
        await self._pull(c)
        c.container_id = (
            "containerd://"
            + hashlib.sha256(
                f"{(self.pod.get('metadata') or {}).get('uid')}/{c.name}".encode()
            ).hexdigest()
        )
        await self.event("Created", f"Created container: {c.name}", c)
        self.k.logs.open(self.ns, self.name, c.name)
        c.state = {"running": {"startedAt": now_rfc3339()}}
        c.started = True
        c.ready = True
        c.process = asyncio.create_task(self._process(c), name=f"container:{self.name}/{c.name}")
        await self.event("Started", f"Started container {c.name}", c)
        await self.publish()

    # -- one container's process -------------------------------------------

    def _log(self, c: _Container, data: bytes) -> None:
        self.k.logs.append(self.ns, self.name, c.name, data)

    def _default_logs(self, c: _Container) -> str:
        words = [c.image, *(c.spec.get("command") or []), *(c.spec.get("args") or [])]
        return f"devcluster: would run {shlex.join(str(w) for w in words)}\n"

    def _resolve(self, c: _Container, path: str) -> tuple[dict[str, bytes], str]:
        path = posixpath.normpath(path)
        best: dict[str, Any] | None = None
        best_len = -1
        for m in c.spec.get("volumeMounts") or []:
            mount = posixpath.normpath(m.get("mountPath") or "/")
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(
                mount
            ) > best_len:
                best, best_len = m, len(mount)
        if best is None:
            return c.fs, path
        rel = path[best_len:].lstrip("/")
        if best.get("subPath"):
            rel = posixpath.join(best["subPath"], rel) if rel else best["subPath"]
        return self.volumes.setdefault(best.get("name", ""), {}), rel

    def exec(self, container: str, command: list[str]) -> shell.Outcome:
        """pods/exec: run ``command`` in a running container (devcluster/shell.py)."""
        c = self.running_container(container)

        def signal(number: int) -> None:
            if number == shell.SIGNALS["KILL"]:
                c.got_kill = True
            elif number == shell.SIGNALS["INT"]:
                c.got_int = True
            else:
                c.got_term = True
            c.signalled.set()

        return shell.run(
            command,
            lambda path: self.read_file(c, path),
            lambda path: self.list_dir(c, path),
            signal,
        )

    def running_container(self, name: str) -> _Container:
        c = next((c for c in self.containers if c.name == name), None)
        if c is None or not c.running or c.process is None or c.process.done():
            raise bad_request(f'container not found ("{name}")')
        return c

    def list_dir(self, c: _Container, path: str) -> list[str] | None:
        """Names in a directory: a volume's root always exists, other paths if non-empty."""
        files, key = self._resolve(c, path)
        prefix = "" if key in ("", ".") else key.rstrip("/") + "/"
        names = sorted({k[len(prefix) :].split("/", 1)[0] for k in files if k.startswith(prefix)})
        if names or (files is not c.fs and not prefix):
            return names
        return None

    def write_file(self, c: _Container, path: str, data: bytes) -> None:
        files, key = self._resolve(c, path)
        files[key] = data

    def read_file(self, c: _Container, path: str) -> bytes | None:
        files, key = self._resolve(c, path)
        return files.get(key)

    async def _signal(self, c: _Container) -> tuple[int, str]:
        """Wait for the signal that ends this process; its exit code and reason."""
        while True:
            await c.signalled.wait()
            c.signalled.clear()
            if c.got_kill:
                return SIGKILL_EXIT, "Error"
            if c.got_term and not c.scenario.ignore_sigterm:
                return self._on_sigterm(c)
            if c.got_int:
                # KPO's exec-mode sidecar traps SIGINT and exits 0; others die of it.
                if c.name == XCOM_SIDECAR_NAME and c.role == _ROLE_REGULAR:
                    return 0, "Completed"
                return SIGINT_EXIT, "Error"

    def _on_sigterm(self, c: _Container) -> tuple[int, str]:
        if c.name == XCOM_SIDECAR_NAME and c.role == _ROLE_SIDECAR:
            self._xcom_handover(c)
            return 0, "Completed"
        if c.role == _ROLE_SIDECAR and c.scenario.exit_code is not None:
            code = c.scenario.exit_code
            return code, "Completed" if code == 0 else "Error"
        return SIGTERM_EXIT, "Error"

    @staticmethod
    def _inline_max(c: _Container) -> int:
        """The sidecar's inline budget, as the pod builder set it (TASKRUN_XCOM_INLINE_MAX)."""
        for env in c.spec.get("env") or []:
            if env.get("name") == XCOM_INLINE_MAX_ENV:
                try:
                    return int(env.get("value") or "")
                except ValueError:
                    break
        return INLINE_RESULT_MAX_BYTES

    def _xcom_handover(self, c: _Container) -> None:
        """The sidecar's contract (docs/architecture.md, "Results")."""
        data = self.read_file(c, XCOM_RESULT_PATH) or b""
        path = c.spec.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
        if not data:
            message = b"none"
        elif len(data) <= self._inline_max(c):
            digest = hashlib.sha256(data).hexdigest()
            message = f"inline:{len(data)}:{digest}:".encode() + data
        else:
            self._log(c, data)
            message = f"log:{len(data)}:{hashlib.sha256(data).hexdigest()}".encode()
        self.write_file(c, path, message)

    async def _behave(self, c: _Container) -> tuple[int, str]:
        """The container's own behaviour, without signals."""
        sc = c.scenario
        text = sc.logs if sc.logs is not None else self._default_logs(c)
        if c.name == XCOM_SIDECAR_NAME:
            text = ""  # its log is reserved for the hand-over
        lines = split_lines(text.encode())
        if c.role == _ROLE_SIDECAR or (c.name == XCOM_SIDECAR_NAME and c.role == _ROLE_REGULAR):
            for line in lines:
                self._log(c, line)
            await asyncio.Future()  # runs until it is told to stop
        step = sc.run_seconds / max(len(lines), 1)
        for line in lines:
            self._log(c, line)
            await asyncio.sleep(step)
        if not lines:
            await asyncio.sleep(sc.run_seconds)
        if sc.oom_killed and sc.exit_code is None:
            return SIGKILL_EXIT, "OOMKilled"
        for path, content in sc.files.items():
            self.write_file(c, path, content)
        if sc.termination_message is not None:
            path = c.spec.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
            self.write_file(c, path, sc.termination_message.encode())
        code = sc.exit_code or 0
        if sc.oom_killed:
            # cgroup v1 (no memory.oom.group): the kernel killed another process of the
            # container and the main one exited with its own code; a real kubelet still says
            # OOMKilled, because containerd saw an OOM event in the container's cgroup.
            return code, "OOMKilled"
        return code, "Completed" if code == 0 else "Error"

    async def _process(self, c: _Container) -> None:
        started_at = c.state.get("running", {}).get("startedAt", now_rfc3339())
        own = asyncio.create_task(self._behave(c))
        signal = asyncio.create_task(self._signal(c))
        try:
            done, _ = await asyncio.wait([own, signal], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (own, signal):
                t.cancel()
        exit_code, reason = (own if own in done else signal).result()
        if self.lost:
            return
        self._terminate(c, exit_code, reason, started_at)
        if self._phase() in ("Succeeded", "Failed"):
            return  # _finish reports the terminal status once, with its final conditions
        await self.publish()

    def _terminate(self, c: _Container, exit_code: int, reason: str, started_at: str) -> None:
        path = c.spec.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
        budget = POD_TERMINATION_MESSAGES_MAX // max(len(self.containers), 1)
        message = termination_message(
            self.read_file(c, path),
            policy=c.spec.get("terminationMessagePolicy") or "File",
            failed=exit_code != 0,
            log_tail=lambda: self.k.logs.read(
                self.ns, self.name, c.name, tail_lines=FALLBACK_LOG_LINES
            ),
            budget=budget,
        )
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": now_rfc3339(),
            "containerID": c.container_id,
        }
        if message:
            terminated["message"] = message
        c.state = {"terminated": terminated}
        c.ready = False
        c.started = False
        self.k.logs.close(self.ns, self.name, c.name)

    # -- stopping ----------------------------------------------------------

    async def _stop(self, c: _Container, grace: float) -> None:
        """SIGTERM, then SIGKILL once the grace period is over."""
        if c.process is None or c.process.done():
            return
        await self.event("Killing", f"Stopping container {c.name}", c)
        if grace > 0:
            c.got_term = True
            c.signalled.set()
            await asyncio.wait([c.process], timeout=grace)
        if not c.process.done():
            c.got_kill = True
            c.signalled.set()
        await asyncio.shield(c.process)

    async def _stop_sidecars(self, grace: float) -> None:
        # Native sidecars stop after the regular containers, in reverse order.
        end = asyncio.get_running_loop().time() + grace
        for c in reversed(self._of(_ROLE_SIDECAR)):
            await self._stop(c, max(0.0, end - asyncio.get_running_loop().time()) if grace else 0)

    async def _kill_all(self, grace: float) -> None:
        end = asyncio.get_running_loop().time() + grace
        await asyncio.gather(*(self._stop(c, grace) for c in self._of(_ROLE_REGULAR, _ROLE_INIT)))
        remaining = max(0.0, end - asyncio.get_running_loop().time()) if grace else 0.0
        await self._stop_sidecars(remaining)

    async def _graceful_delete(self) -> None:
        grace = (self.pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
        await self._kill_all(self._grace_period() if grace is None else float(grace))
        await self._finish()
        await self._remove()

    async def _deadline(self) -> None:
        await self.event("DeadlineExceeded", DEADLINE_MESSAGE)
        await self._kill_all(self._grace_period())
        self.extra["reason"] = "DeadlineExceeded"
        self.extra["message"] = DEADLINE_MESSAGE
        await self._finish(phase="Failed")

    async def _evict(self) -> None:
        base = self._of(_ROLE_REGULAR)[0] if self._of(_ROLE_REGULAR) else None
        request = "0"
        if base is not None:
            request = str(
                ((base.spec.get("resources") or {}).get("requests") or {}).get("memory", "0")
            )
        message = (
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki."
        )
        if base is not None:
            message += (
                f" Container {base.name} was using 2097152Ki, request is {request}, "
                "has larger consumption of memory."
            )
        await self.event("Evicted", message, warning=True)
        self._set_condition("DisruptionTarget", "True", "TerminationByKubelet", message)
        self.extra["reason"] = "Evicted"
        self.extra["message"] = message
        await self._kill_all(0)
        await self._finish(phase="Failed")

    async def _node_lost(self) -> None:
        # Nothing reports for this pod any more: the node lifecycle controller marks it
        # not ready, then the pod GC fails it. Container states stay as last reported.
        self.lost = True
        for c in self.containers:
            if c.process is not None:
                c.process.cancel()
            self.k.logs.close(self.ns, self.name, c.name)
        message = f"Node {self.k.node_name} which was running pod {self.name} is unresponsive"
        for kind in ("Ready", "ContainersReady"):
            self._set_condition(kind, "False", "NodeLost", message)
        await self._patch_status({"conditions": self._ordered_conditions()})
        self._set_condition(
            "DisruptionTarget", "True", "DeletionByPodGC", "PodGC: node no longer exists"
        )
        self.terminal = True
        await self._patch_status(
            {
                "phase": "Failed",
                "reason": "NodeLost",
                "message": message,
                "conditions": self._ordered_conditions(),
            }
        )

    def _mark_unknown(self, initialized: bool) -> None:
        unknown = {
            "exitCode": SIGKILL_EXIT,
            "reason": "ContainerStatusUnknown",
            "message": UNKNOWN_STATUS_MESSAGE,
        }
        if initialized:
            for c in self._of(_ROLE_REGULAR):
                if c.terminated is None:
                    c.state = {"terminated": dict(unknown)}
                    c.ready = c.started = False
        inits = self._of(_ROLE_INIT, _ROLE_SIDECAR)
        last_started = max((i for i, c in enumerate(inits) if c.container_id), default=-1)
        for c in inits[: last_started + 1]:
            if c.terminated is None:
                c.state = {"terminated": dict(unknown)}
                c.ready = c.started = False

    def _initialized(self) -> bool:
        if not self._of(_ROLE_INIT, _ROLE_SIDECAR):
            return True
        if any("waiting" not in c.state for c in self._of(_ROLE_REGULAR)):
            return True
        last = self._of(_ROLE_INIT, _ROLE_SIDECAR)[-1]
        if last.role == _ROLE_SIDECAR:
            return last.container_id != ""
        return (last.terminated or {}).get("exitCode") == 0

    async def _finish(self, phase: str | None = None) -> None:
        """Make the pod terminal: the last status the kubelet reports for it."""
        self._mark_unknown(self._initialized())
        self.terminal = True
        self.sandbox = False
        self.phase_override = phase
        for c in self.containers:
            self.k.logs.close(self.ns, self.name, c.name)
        await self.publish()

    async def _bad_scenario(self, exc: ScenarioError) -> None:
        message = f"devcluster: invalid scenario annotation: {exc}"
        self._build(Scenario())
        now = now_rfc3339()
        for c in self.containers:
            c.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": message,
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
        self.extra.update(
            startTime=now,
            hostIP=self.k.node_ip,
            hostIPs=[{"ip": self.k.node_ip}],
            qosClass=qos_class(self.spec),
            reason="InvalidScenario",
            message=message,
        )
        await self.event("Failed", message, warning=True)
        self.terminal = True
        self.phase_override = "Failed"
        await self.publish()

    # -- status ------------------------------------------------------------

    def _set_condition(
        self, kind: str, status: str, reason: str | None = None, message: str | None = None
    ) -> None:
        old = self.conditions.get(kind)
        cond: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None}
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        if old is not None and old["status"] == status:
            cond["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            cond["lastTransitionTime"] = now_rfc3339()
        self.conditions[kind] = cond

    def _phase(self) -> str:
        """kubelet getPhase for restartPolicy Never, native sidecars included."""
        if self.phase_override:
            return self.phase_override
        pending_init = failed_init = 0
        running = waiting = stopped = succeeded = 0
        for c in self._of(_ROLE_INIT, _ROLE_SIDECAR):
            if c.role == _ROLE_INIT:
                t = c.terminated
                if t is None:
                    pending_init += 1
                elif t["exitCode"] != 0:
                    failed_init += 1
            elif c.running:
                running += 1
            elif c.terminated is None:
                pending_init += 1
                waiting += 1
        any_regular_started = False
        for c in self._of(_ROLE_REGULAR):
            if c.running:
                running += 1
                any_regular_started = True
            elif c.terminated is not None:
                any_regular_started = True
                stopped += 1
                succeeded += c.terminated["exitCode"] == 0
            else:
                waiting += 1
        if failed_init:
            return "Failed"
        if (pending_init and not any_regular_started) or waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            return "Succeeded" if stopped == succeeded else "Failed"
        return "Pending"

    def _unready(self) -> list[str]:
        names = [c.name for c in self._of(_ROLE_SIDECAR) if not c.ready]
        return names + [c.name for c in self._of(_ROLE_REGULAR) if not c.ready]

    def _conditions(self, phase: str) -> list[dict[str, Any]]:
        self._set_condition("PodReadyToStartContainers", "True" if self.sandbox else "False")
        incomplete = [
            c.name
            for c in self._of(_ROLE_INIT, _ROLE_SIDECAR)
            if (c.role == _ROLE_SIDECAR and not c.container_id)
            or (c.role == _ROLE_INIT and (c.terminated or {}).get("exitCode") != 0)
        ]
        regular_started = any("waiting" not in c.state for c in self._of(_ROLE_REGULAR))
        if phase == "Succeeded":
            self._set_condition("Initialized", "True", "PodCompleted")
        elif regular_started or not incomplete:
            self._set_condition("Initialized", "True")
        else:
            msg = f"containers with incomplete status: {_go_list(incomplete)}"
            self._set_condition("Initialized", "False", "ContainersNotInitialized", msg)
        if phase in ("Succeeded", "Failed"):
            reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
            self._set_condition("ContainersReady", "False", reason)
            self._set_condition("Ready", "False", reason)
        elif unready := self._unready():
            msg = f"containers with unready status: {_go_list(unready)}"
            self._set_condition("ContainersReady", "False", "ContainersNotReady", msg)
            self._set_condition("Ready", "False", "ContainersNotReady", msg)
        else:
            self._set_condition("ContainersReady", "True")
            self._set_condition("Ready", "True")
        if "PodScheduled" not in self.conditions:
            self._set_condition("PodScheduled", "True")
        return self._ordered_conditions()

    def _ordered_conditions(self) -> list[dict[str, Any]]:
        return [dict(self.conditions[k]) for k in _CONDITION_ORDER if k in self.conditions]

    def _status(self) -> dict[str, Any]:
        phase = self._phase()
        status: dict[str, Any] = {"phase": phase, "conditions": self._conditions(phase)}
        generation = (self.pod.get("metadata") or {}).get("generation")
        if generation is not None:
            status["observedGeneration"] = generation
        status.update(self.extra)
        inits = self._of(_ROLE_INIT, _ROLE_SIDECAR)
        if inits:
            status["initContainerStatuses"] = [c.status() for c in inits]
        status["containerStatuses"] = sorted(
            (c.status() for c in self._of(_ROLE_REGULAR)), key=lambda s: s["name"]
        )
        return status

    async def publish(self) -> None:
        """Report the current status, if it changed since the last report."""
        if self.lost:
            return
        async with self._publish_lock:
            status = self._status()
            if status == self._published:
                return
            await self._patch_status(status)
            self._published = status

    async def _patch_status(self, status: dict[str, Any]) -> None:
        await _retrying(
            lambda: self.k.store.patch(
                PODS, self.ns, self.name, {"status": status}, subresource="status"
            )
        )


async def _retrying(call: Callable[[], Awaitable[Any]], attempts: int = 5) -> Any:
    delay = 0.05
    for attempt in range(attempts):
        try:
            return await call()
        except ApiError as exc:
            if exc.code == 404:
                raise _Gone from None
            if exc.code < 429 or attempt == attempts - 1:
                raise
        await asyncio.sleep(delay)
        delay *= 2
    return None
