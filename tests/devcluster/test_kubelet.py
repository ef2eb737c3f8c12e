"""The simulated kubelet, driven through the Store interface, one scenario per test.

`FakeStore` is a small in-memory implementation of the Store interface (the one
devcluster/store.py serves), so these tests pin the kubelet's behaviour on its own.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import copy
import hashlib
import itertools
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from devcluster.accounting import RequestLog
from devcluster.errors import ApiError
from devcluster.faults import FaultPlan
from devcluster.httpstore import Credentials, HttpStore
from devcluster.kubelet import Kubelet
from devcluster.resources import EVENTS, NODES, PODS
from devcluster.scenario import SCENARIO_ANNOTATION
from devcluster.server import ApiServer
from devcluster.store import Store

NS = "default"


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


class FakeStore:
    """Just enough of devcluster.store.Store for the kubelet, with a write log."""

    def __init__(self) -> None:
        self.objects: dict[tuple[Any, str | None, str], dict[str, Any]] = {}
        self.watchers: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = []
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.deletes: list[tuple[str, int | None]] = []
        self._rv = itertools.count(1)

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        for queue in self.watchers:
            queue.put_nowait((kind, copy.deepcopy(obj)))

    def _missing(self, name: str) -> ApiError:
        return ApiError(404, f'"{name}" not found')

    async def get(self, key: Any, namespace: str | None, name: str) -> dict[str, Any]:
        try:
            return copy.deepcopy(self.objects[(key, namespace, name)])
        except KeyError:
            raise self._missing(name) from None

    async def list(
        self, key: Any, namespace: str | None = None, **_: Any
    ) -> builtins.list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (k, ns, _name), o in self.objects.items()
            if k == key and (namespace is None or ns == namespace)
        ]

    async def create(self, key: Any, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if (key, namespace, meta["name"]) in self.objects:
            raise ApiError(409, "already exists")
        meta.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._rv)))
        if namespace is not None:
            meta["namespace"] = namespace
        if key == PODS:
            obj["status"] = {"phase": "Pending"}
        self.objects[(key, namespace, meta["name"])] = obj
        self._emit("ADDED", obj)
        return copy.deepcopy(obj)

    async def patch(
        self,
        key: Any,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        current = await self.get(key, namespace, name)
        if subresource == "status":
            patch = {"status": patch["status"]}
            if key == PODS:
                self.statuses.setdefault(name, []).append(copy.deepcopy(patch["status"]))
        obj = merge(current, patch)
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[(key, namespace, name)] = obj
        self._emit("MODIFIED", obj)
        return copy.deepcopy(obj)

    async def delete(
        self,
        key: Any,
        namespace: str | None,
        name: str,
        grace_period_seconds: int | None = None,
        *,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        obj = await self.get(key, namespace, name)
        if (preconditions or {}).get("uid") not in (None, obj["metadata"]["uid"]):
            raise ApiError(409, "Precondition failed: UID")
        self.deletes.append((name, grace_period_seconds))
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        grace = grace_period_seconds
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if (
            key == PODS
            and grace
            and spec.get("nodeName")
            and status.get("phase")
            not in (
                "Succeeded",
                "Failed",
            )
        ):
            if obj["metadata"].get("deletionTimestamp"):
                return obj
            obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            obj["metadata"]["deletionGracePeriodSeconds"] = grace
            self.objects[(key, namespace, name)] = obj
            self._emit("MODIFIED", obj)
            return copy.deepcopy(obj)
        del self.objects[(key, namespace, name)]
        self._emit("DELETED", obj)
        return None

    async def bind(self, namespace: str, name: str, node_name: str) -> None:
        obj = await self.get(PODS, namespace, name)
        obj["spec"]["nodeName"] = node_name
        self.objects[(PODS, namespace, name)] = obj
        self._emit("MODIFIED", obj)

    async def watch(
        self, key: Any, namespace: str | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.watchers.append(queue)
        try:
            while True:
                kind, obj = await queue.get()
                if obj.get("kind", "Pod") == "Pod" and "spec" in obj:
                    yield kind, obj
        finally:
            self.watchers.remove(queue)

    # -- test helpers --

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.objects.get((PODS, NS, name))

    def events(self, name: str | None = None) -> builtins.list[dict[str, Any]]:
        return [
            o
            for (k, _ns, _n), o in self.objects.items()
            if k == EVENTS and (name is None or o["involvedObject"]["name"] == name)
        ]


class RecordingStore(Store):
    """The real devcluster Store, recording what the kubelet writes like FakeStore does."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, builtins.list[dict[str, Any]]] = {}
        self.deletes: builtins.list[tuple[str, int | None]] = []

    async def patch(self, key: Any, namespace: str | None, name: str, patch: Any,
                    patch_type: str = "merge", subresource: str | None = None,
                    **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        result = await super().patch(key, namespace, name, patch, patch_type, subresource, **kwargs)
        if key == PODS and subresource == "status":
            self.statuses.setdefault(name, []).append(copy.deepcopy(patch["status"]))
        return result

    async def delete(self, key: Any, namespace: str | None, name: str,
                     grace_period_seconds: int | None = None,
                     **kwargs: Any) -> dict[str, Any] | None:  # fmt: skip
        if key == PODS:
            self.deletes.append((name, grace_period_seconds))
        return await super().delete(key, namespace, name, grace_period_seconds, **kwargs)

    def pod(self, name: str) -> dict[str, Any] | None:
        items, _ = self.list_now(PODS, NS, field_selector=f"metadata.name={name}")
        return items[0] if items else None

    def events(self, name: str | None = None) -> builtins.list[dict[str, Any]]:
        items, _ = self.list_now(EVENTS, NS)
        return [e for e in items if name is None or e["involvedObject"]["name"] == name]


def make_pod(
    name: str,
    scenario: dict[str, Any] | None = None,
    *,
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if scenario is not None:
        meta["annotations"] = {SCENARIO_ANNOTATION: json.dumps(scenario)}
    body: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": containers or [{"name": "base", "image": "busybox:1.36"}],
        **spec,
    }
    if init:
        body["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


XCOM_VOLUME = {"name": "xcom", "emptyDir": {}}
XCOM_MOUNT = {"name": "xcom", "mountPath": "/airflow/xcom"}


def xcom_pod(name: str, scenario: dict[str, Any], *, native: bool = True) -> dict[str, Any]:
    sidecar: dict[str, Any] = {
        "name": "airflow-xcom-sidecar",
        "image": "alpine",
        "volumeMounts": [XCOM_MOUNT],
    }
    base = {"name": "base", "image": "busybox:1.36", "volumeMounts": [XCOM_MOUNT]}
    if native:
        sidecar["restartPolicy"] = "Always"
        return make_pod(name, scenario, containers=[base], init=[sidecar], volumes=[XCOM_VOLUME])
    return make_pod(name, scenario, containers=[base, sidecar], volumes=[XCOM_VOLUME])


async def wait_until(
    check: Callable[[], Any], timeout: float = 5.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    def __init__(self, store: FakeStore | RecordingStore, kubelet: Kubelet) -> None:
        self.store = store
        self.kubelet = kubelet

    async def run(self, pod: dict[str, Any]) -> str:
        await self.store.create(PODS, NS, pod)
        return str(pod["metadata"]["name"])

    def status(self, name: str) -> dict[str, Any]:
        pod = self.store.pod(name)
        assert pod is not None, f"pod {name} is gone"
        return pod.get("status") or {}

    async def finished(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        await wait_until(
            lambda: self.status(name).get("phase") in ("Succeeded", "Failed"),
            timeout,
            f"{name} to finish",
        )
        return self.status(name)

    async def gone(self, name: str, timeout: float = 5.0) -> None:
        await wait_until(lambda: self.store.pod(name) is None, timeout, f"{name} to be removed")

    def container(self, name: str, container: str = "base") -> dict[str, Any]:
        status = self.status(name)
        for s in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
            if s["name"] == container:
                return dict(s)
        raise AssertionError(f"no status for {container}")

    def state(self, name: str, container: str = "base") -> dict[str, Any]:
        """The container's state, {} before the kubelet reported it."""
        status = self.status(name)
        for s in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
            if s["name"] == container:
                return dict(s["state"])
        return {}

    def waiting_reason(self, name: str, container: str = "base") -> str | None:
        reason = self.state(name, container).get("waiting", {}).get("reason")
        return None if reason is None else str(reason)

    def terminated(self, name: str, container: str = "base") -> dict[str, Any]:
        return dict(self.container(name, container)["state"]["terminated"])

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        for cond in self.status(name).get("conditions", []):
            if cond["type"] == kind:
                return dict(cond)
        raise AssertionError(f"no {kind} condition")

    def reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.store.events(name)]

    def event(self, name: str, reason: str) -> dict[str, Any]:
        for e in self.store.events(name):
            if e["reason"] == reason:
                return e
        raise AssertionError(f"no {reason} event in {self.reasons(name)}")

    def log(self, name: str, container: str = "base") -> bytes:
        return self.kubelet.logs.read(NS, name, container)


@pytest.fixture(params=["fake", "real", "http"])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """The kubelet over three transports: a fake store, devcluster's Store in process, and
    devcluster's API server over HTTP (the node agent's HttpStore, as against any cluster)."""
    store: FakeStore | RecordingStore = FakeStore() if request.param == "fake" else RecordingStore()
    transport: Any = store
    runner = None
    if isinstance(store, RecordingStore) and request.param == "http":
        server = ApiServer(store, requests=RequestLog(), faults=FaultPlan())
        runner = web.AppRunner(server.app(), shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        transport = HttpStore(Credentials(f"http://127.0.0.1:{port}", False))
    kubelet = Kubelet(transport, image_pull_backoff=0.1)
    task = asyncio.create_task(kubelet.run())
    await asyncio.wait_for(kubelet.wait_listening(), 5)
    yield Cluster(store, kubelet)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if runner is not None:
        await transport.close()
        await runner.cleanup()


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# -- node -----------------------------------------------------------------


async def test_registers_a_ready_linux_node(cluster: Cluster) -> None:
    node = await cluster.store.get(NODES, None, "devcluster-node")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "devcluster-node"
    assert labels["kubernetes.io/os"] == "linux"
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    assert node["status"]["allocatable"]["pods"] == "110"


# -- success and exit codes -------------------------------------------------


async def test_default_scenario_succeeds_with_a_would_run_line(cluster: Cluster) -> None:
    name = await cluster.run(
        make_pod(
            "hello",
            containers=[
                {"name": "base", "image": "busybox", "command": ["sh", "-c"], "args": ["echo hi"]}
            ],
        )
    )
    status = await cluster.finished(name)
    assert status["phase"] == "Succeeded"
    term = cluster.terminated(name)
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    assert "message" not in term
    assert RFC3339.match(term["startedAt"]) and RFC3339.match(term["finishedAt"])
    assert term["containerID"].startswith("containerd://")
    assert cluster.log(name) == b"devcluster: would run busybox sh -c 'echo hi'\n"
    base = cluster.container(name)
    assert base["image"] == "docker.io/library/busybox:latest"
    assert base["imageID"].startswith("docker.io/library/busybox@sha256:")
    assert (base["ready"], base["started"], base["restartCount"]) == (False, False, 0)
    assert status["podIP"].startswith("10.244.") and status["hostIP"] == "172.18.0.2"
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert RFC3339.match(status["startTime"])
    assert status["qosClass"] == "BestEffort"
    assert cluster.store.pod(name)["spec"]["nodeName"] == "devcluster-node"  # type: ignore[index]
    conditions = {c["type"]: (c["status"], c.get("reason")) for c in status["conditions"]}
    assert conditions == {
        "PodReadyToStartContainers": ("False", None),
        "Initialized": ("True", "PodCompleted"),
        "Ready": ("False", "PodCompleted"),
        "ContainersReady": ("False", "PodCompleted"),
        "PodScheduled": ("True", None),
    }
    assert cluster.reasons(name) == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    scheduled = cluster.event(name, "Scheduled")
    # As kube-scheduler's, recorded through events.k8s.io/v1.
    assert (scheduled.get("source"), scheduled["reportingComponent"], scheduled["action"]) == (
        {},
        "default-scheduler",
        "Binding",
    )
    assert scheduled.get("lastTimestamp") is None and scheduled["eventTime"]
    assert scheduled["message"] == f"Successfully assigned {NS}/hello to devcluster-node"
    started = cluster.event(name, "Started")
    assert started["involvedObject"]["fieldPath"] == "spec.containers{base}"
    assert started["involvedObject"]["uid"] == cluster.store.pod(name)["metadata"]["uid"]  # type: ignore[index]
    assert started["source"] == {"component": "kubelet", "host": "devcluster-node"}
    assert (started["count"], started["type"]) == (1, "Normal")


async def test_pod_passes_through_pending_and_running(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("phases", {"runSeconds": 0.2}))
    await cluster.finished(name)
    phases = [s["phase"] for s in cluster.store.statuses[name]]
    assert phases[0] == "Pending"
    assert "Running" in phases
    assert phases.index("Running") < phases.index("Succeeded")
    waiting = cluster.store.statuses[name][0]["containerStatuses"][0]["state"]
    assert waiting == {"waiting": {"reason": "ContainerCreating"}}
    running = next(s for s in cluster.store.statuses[name] if s["phase"] == "Running")
    base = running["containerStatuses"][0]
    assert (base["ready"], base["started"]) == (True, True)
    assert RFC3339.match(base["state"]["running"]["startedAt"])
    ready = {c["type"]: c["status"] for c in running["conditions"]}
    assert ready["Ready"] == ready["ContainersReady"] == ready["Initialized"] == "True"


@pytest.mark.parametrize(
    ("scenario", "phase", "exit_code", "reason"),
    [
        ({"exitCode": 0}, "Succeeded", 0, "Completed"),
        ({"exitCode": 1}, "Failed", 1, "Error"),
        ({"exitCode": 42}, "Failed", 42, "Error"),
        ({"oomKilled": True}, "Failed", 137, "OOMKilled"),
        # A child killed, the main process went on (cgroup v1, as the real node showed).
        ({"exitCode": 0, "oomKilled": True}, "Succeeded", 0, "OOMKilled"),
        ({"exitCode": 3, "oomKilled": True}, "Failed", 3, "OOMKilled"),
    ],
)
async def test_exit_codes(
    cluster: Cluster, scenario: dict[str, Any], phase: str, exit_code: int, reason: str
) -> None:
    name = await cluster.run(make_pod("exit", scenario))
    status = await cluster.finished(name)
    assert status["phase"] == phase
    term = cluster.terminated(name)
    assert (term["exitCode"], term["reason"]) == (exit_code, reason)
    failed = {c["type"]: c.get("reason") for c in status["conditions"]}
    assert failed["Ready"] == ("PodCompleted" if phase == "Succeeded" else "PodFailed")


async def test_any_failing_regular_container_fails_the_pod(cluster: Cluster) -> None:
    pod = make_pod(
        "two",
        {"containers": {"helper": {"exitCode": 2}}},
        containers=[{"name": "base", "image": "a:1"}, {"name": "helper", "image": "b:1"}],
    )
    name = await cluster.run(pod)
    status = await cluster.finished(name)
    assert status["phase"] == "Failed"
    assert cluster.terminated(name)["exitCode"] == 0
    assert cluster.terminated(name, "helper")["exitCode"] == 2
    assert [s["name"] for s in status["containerStatuses"]] == ["base", "helper"]


# -- logs -----------------------------------------------------------------


async def test_logs_are_spread_over_the_run(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("logs", {"logs": "one\ntwo\nthree", "runSeconds": 0.6}))
    await wait_until(lambda: cluster.status(name).get("phase") == "Running")
    await wait_until(lambda: cluster.log(name), what="the first line")
    first = cluster.log(name)
    assert first.startswith(b"one\n") and b"three" not in first
    follow = [c async for c in cluster.kubelet.logs.follow(NS, name, "base")]
    assert b"".join(follow) == b"one\ntwo\nthree"
    await cluster.finished(name)
    logs = cluster.kubelet.logs
    assert logs.read(NS, name, "base", tail_lines=1) == b"three"
    assert logs.read(NS, name, "base", limit_bytes=6) == b"one\ntw"
    stamped = logs.read(NS, name, "base", timestamps=True).split(b"\n")
    assert all(re.match(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line) for line in stamped)


async def test_logs_are_forgotten_when_the_pod_is_gone(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("forget", {"logs": "x\n"}))
    await cluster.finished(name)
    assert cluster.log(name) == b"x\n"
    await cluster.store.delete(PODS, NS, name)
    await cluster.gone(name)
    await wait_until(lambda: not cluster.kubelet.logs.containers(NS, name))
    with pytest.raises(KeyError):
        cluster.log(name)


# -- images ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_scenario", "image", "reason", "message", "events"),
    [
        (
            "InvalidImageName",
            "busybox:1.36",
            "InvalidImageName",
            'Failed to apply default image tag "busybox:1.36": couldn\'t parse image name '
            '"busybox:1.36": invalid reference format',
            [("InspectFailed", "Warning"), ("Failed", "Warning")],
        ),
        (
            None,
            "Bad Image!",
            "InvalidImageName",
            'Failed to apply default image tag "Bad Image!": couldn\'t parse image name '
            '"Bad Image!": invalid reference format',
            [("InspectFailed", "Warning"), ("Failed", "Warning")],
        ),
        (
            "ErrImageNeverPull",
            "busybox:1.36",
            "ErrImageNeverPull",
            'Container image "busybox:1.36" is not present with pull policy of Never',
            [("ErrImageNeverPull", "Warning"), ("Failed", "Warning")],
        ),
    ],
)
async def test_permanent_image_errors_keep_the_pod_pending(
    cluster: Cluster,
    image_scenario: str | None,
    image: str,
    reason: str,
    message: str,
    events: list[tuple[str, str]],
) -> None:
    scenario = {"image": image_scenario} if image_scenario else {}
    pod = make_pod("img", scenario, containers=[{"name": "base", "image": image}])
    name = await cluster.run(pod)
    await wait_until(lambda: cluster.waiting_reason(name) == reason, what=reason)
    waiting = cluster.container(name)["state"]["waiting"]
    assert waiting == {"reason": reason, "message": message}
    assert cluster.status(name)["phase"] == "Pending"
    # Over HTTP the events may land after the status they follow.
    await wait_until(lambda: len(cluster.store.events(name)) > len(events), what="events")
    image_events = [(e["reason"], e["type"]) for e in cluster.store.events(name)][1:]
    assert image_events == events
    assert cluster.event(name, "Failed")["message"] == f"Error: {reason}"


async def test_pull_errors_cycle_to_image_pull_back_off(cluster: Cluster) -> None:
    pod = make_pod("pull", {"image": "ErrImagePull:manifest unknown"})
    name = await cluster.run(pod)

    def reasons() -> list[str]:
        return [
            s["containerStatuses"][0]["state"].get("waiting", {}).get("reason")
            for s in cluster.store.statuses.get(name, [])
            if s.get("containerStatuses")
        ]

    await wait_until(lambda: reasons().count("ErrImagePull") >= 2, what="a second pull")
    seen = [r for r in reasons() if r != "ContainerCreating"]
    assert seen[:3] == ["ErrImagePull", "ImagePullBackOff", "ErrImagePull"]
    backoff = next(
        s["containerStatuses"][0]["state"]["waiting"]
        for s in cluster.store.statuses[name]
        if s["containerStatuses"][0]["state"].get("waiting", {}).get("reason") == "ImagePullBackOff"
    )
    assert backoff["message"] == (
        'Back-off pulling image "busybox:1.36": ErrImagePull: manifest unknown'
    )
    failed = {e["message"]: e for e in cluster.store.events(name) if e["reason"] == "Failed"}
    assert failed['Failed to pull image "busybox:1.36": manifest unknown']["type"] == "Warning"
    assert failed["Error: ErrImagePull"]["count"] >= 2
    assert "Error: ImagePullBackOff" in failed
    assert cluster.event(name, "BackOff")["message"] == 'Back-off pulling image "busybox:1.36"'
    assert cluster.event(name, "Pulling")["count"] >= 2
    assert cluster.status(name)["phase"] == "Pending"


@pytest.mark.parametrize(
    ("policy", "message_start"),
    [
        ("Always", 'Successfully pulled image "busybox:1.36" in '),
        ("IfNotPresent", 'Container image "busybox:1.36" already present on machine'),
    ],
)
async def test_pulled_event_follows_the_pull_policy(
    cluster: Cluster, policy: str, message_start: str
) -> None:
    pod = make_pod(
        "policy", containers=[{"name": "base", "image": "busybox:1.36", "imagePullPolicy": policy}]
    )
    name = await cluster.run(pod)
    await cluster.finished(name)
    assert cluster.event(name, "Pulled")["message"].startswith(message_start)
    assert ("Pulling" in cluster.reasons(name)) == (policy == "Always")


# -- scheduling -----------------------------------------------------------

NOT_MATCHING = (
    "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)


@pytest.mark.parametrize(
    ("scenario", "spec", "message"),
    [
        ({"unschedulable": "0/1 nodes are available: 1 Insufficient cpu."}, {},
         "0/1 nodes are available: 1 Insufficient cpu."),
        (None, {"nodeSelector": {"disktype": "ssd"}}, NOT_MATCHING),
        (None, {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]}]}}}},
         NOT_MATCHING),
        (None, {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "NotIn", "values": ["devcluster-node"]}]}]}}}},
         NOT_MATCHING),
    ],
)  # fmt: skip
async def test_unschedulable(
    cluster: Cluster, scenario: dict[str, Any] | None, spec: dict[str, Any], message: str
) -> None:
    name = await cluster.run(make_pod("nosched", scenario, **spec))
    await wait_until(lambda: cluster.status(name).get("conditions"))
    cond = cluster.condition(name, "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", message)
    assert cluster.status(name)["phase"] == "Pending"
    await wait_until(lambda: "FailedScheduling" in cluster.reasons(name), what="the event")
    event = cluster.event(name, "FailedScheduling")
    assert (event["type"], event["message"]) == ("Warning", message)
    assert event["reportingComponent"] == "default-scheduler"
    assert "nodeName" not in cluster.store.pod(name)["spec"]  # type: ignore[index]
    await cluster.store.delete(PODS, NS, name)
    await cluster.gone(name)


async def test_the_scheduler_retries_when_the_pod_changes(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("retry", {"unschedulable": "0/1 nodes: full"}))
    await wait_until(lambda: cluster.status(name).get("conditions"))
    assert cluster.condition(name, "PodScheduled")["status"] == "False"
    annotations = {SCENARIO_ANNOTATION: json.dumps({"exitCode": 0})}
    await cluster.store.patch(PODS, NS, name, {"metadata": {"annotations": annotations}})
    status = await cluster.finished(name)
    assert status["phase"] == "Succeeded"
    scheduled = cluster.condition(name, "PodScheduled")
    assert (scheduled["status"], scheduled.get("reason")) == ("True", None)
    assert cluster.reasons(name)[:2] == ["FailedScheduling", "Scheduled"]


@pytest.mark.parametrize(
    "spec",
    [
        {"nodeSelector": {"kubernetes.io/os": "linux"}},
        {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "Exists"}]},
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                       "values": ["devcluster-node"]}]}]}}}},
    ],
)  # fmt: skip
async def test_matching_selectors_schedule(cluster: Cluster, spec: dict[str, Any]) -> None:
    name = await cluster.run(make_pod("fits", **spec))
    assert (await cluster.finished(name))["phase"] == "Succeeded"


async def test_taints_need_tolerations() -> None:
    store = FakeStore()
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    kubelet = Kubelet(store, taints=[taint])  # type: ignore[arg-type]
    task = asyncio.create_task(kubelet.run())
    try:
        await kubelet.wait_listening()
        c = Cluster(store, kubelet)
        await c.run(make_pod("tainted"))
        await wait_until(lambda: c.status("tainted").get("conditions"))
        assert c.condition("tainted", "PodScheduled")["message"].startswith(
            "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. "
        )
        toleration = {"key": "dedicated", "operator": "Equal", "value": "gpu"}
        await c.run(make_pod("tolerant", tolerations=[toleration]))
        assert (await c.finished("tolerant"))["phase"] == "Succeeded"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_other_schedulers_pods_are_left_alone(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("other", schedulerName="volcano"))
    await asyncio.sleep(0.1)  # nothing to await: the point is that nothing happens
    assert cluster.status(name).get("phase") == "Pending"
    assert "conditions" not in cluster.status(name)
    assert "nodeName" not in cluster.store.pod(name)["spec"]  # type: ignore[index]
    assert cluster.store.events(name) == []


# -- termination messages -------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "policy", "expected"),
    [
        ({"terminationMessage": "done"}, "File", "done"),
        ({"files": {"/dev/termination-log": "from file"}}, "File", "from file"),
        ({"terminationMessage": "x" * 5000 + "END"}, "File", ("x" * 5000 + "END")[-4096:]),
        ({"terminationMessage": "y" * 4096}, "File", "y" * 4096),
        ({"exitCode": 1, "logs": "a\nb\n"}, "File", None),
        ({"exitCode": 1, "logs": "a\nb\n"}, "FallbackToLogsOnError", "a\nb\n"),
        ({"exitCode": 0, "logs": "a\nb\n"}, "FallbackToLogsOnError", None),
        ({"exitCode": 1, "logs": "a\n", "terminationMessage": "m"}, "FallbackToLogsOnError", "m"),
        (
            {"exitCode": 1, "logs": "".join(f"line {i}\n" for i in range(200)), "runSeconds": 0},
            "FallbackToLogsOnError",
            "".join(f"line {i}\n" for i in range(120, 200)),
        ),
        (
            {"exitCode": 1, "logs": "z" * 3000, "runSeconds": 0},
            "FallbackToLogsOnError",
            "z" * 2048,
        ),
    ],
)
async def test_termination_message(
    cluster: Cluster, scenario: dict[str, Any], policy: str, expected: str | None
) -> None:
    pod = make_pod(
        "msg",
        scenario,
        containers=[{"name": "base", "image": "a:1", "terminationMessagePolicy": policy}],
    )
    name = await cluster.run(pod)
    await cluster.finished(name)
    assert cluster.terminated(name).get("message") == expected


async def test_custom_termination_message_path_through_a_volume(cluster: Cluster) -> None:
    pod = make_pod(
        "path",
        {"files": {"/out/msg": "via volume"}},
        containers=[
            {
                "name": "base",
                "image": "a:1",
                "terminationMessagePath": "/out/msg",
                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
            }
        ],
        volumes=[{"name": "out", "emptyDir": {}}],
    )
    name = await cluster.run(pod)
    await cluster.finished(name)
    assert cluster.terminated(name)["message"] == "via volume"


async def test_many_containers_share_the_12k_message_budget(cluster: Cluster) -> None:
    containers = [{"name": f"c{i}", "image": "a:1"} for i in range(4)]
    overrides = {f"c{i}": {"terminationMessage": "m" * 4000} for i in range(4)}
    name = await cluster.run(make_pod("budget", {"containers": overrides}, containers=containers))
    await cluster.finished(name)
    assert len(cluster.terminated(name, "c0")["message"]) == 12 * 1024 // 4


# -- init containers and native sidecars ----------------------------------


async def test_init_containers_run_in_order_before_the_main_container(cluster: Cluster) -> None:
    init = [{"name": "first", "image": "a:1"}, {"name": "second", "image": "a:1"}]
    name = await cluster.run(make_pod("init", init=init))
    await cluster.finished(name)
    first = cluster.store.statuses[name][0]
    assert first["initContainerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert first["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    init_cond = first["conditions"][[c["type"] for c in first["conditions"]].index("Initialized")]
    assert init_cond["reason"] == "ContainersNotInitialized"
    assert init_cond["message"] == "containers with incomplete status: [first second]"
    started = [e["involvedObject"]["fieldPath"] for e in cluster.store.events(name)
               if e["reason"] == "Started"]  # fmt: skip
    assert started == [
        "spec.initContainers{first}",
        "spec.initContainers{second}",
        "spec.containers{base}",
    ]
    f, s = cluster.terminated(name, "first"), cluster.terminated(name, "second")
    assert f["finishedAt"] <= s["startedAt"]


async def test_failed_init_container_fails_the_pod(cluster: Cluster) -> None:
    init = [{"name": "setup", "image": "a:1"}]
    name = await cluster.run(
        make_pod("badinit", {"containers": {"setup": {"exitCode": 3}}}, init=init)
    )
    status = await cluster.finished(name)
    assert status["phase"] == "Failed"
    assert cluster.terminated(name, "setup")["exitCode"] == 3
    assert cluster.container(name)["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert "Started" not in [
        e["reason"] for e in cluster.store.events(name)
        if e["involvedObject"].get("fieldPath") == "spec.containers{base}"
    ]  # fmt: skip
    assert cluster.condition(name, "Initialized")["status"] == "False"


async def test_native_sidecars_stop_after_the_main_containers_in_reverse_order(
    cluster: Cluster,
) -> None:
    init = [
        {"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"},
        {"name": "setup", "image": "a:1"},
        {"name": "shipper", "image": "fluent:1", "restartPolicy": "Always"},
    ]
    name = await cluster.run(make_pod("sidecars", {"runSeconds": 0.2}, init=init))
    await wait_until(lambda: cluster.status(name).get("phase") == "Running")
    assert cluster.container(name, "proxy")["state"].keys() == {"running"}
    assert cluster.container(name, "proxy")["ready"] is True
    status = await cluster.finished(name)
    assert status["phase"] == "Succeeded"  # sidecars' 143 does not count
    base = cluster.terminated(name)
    proxy, shipper = cluster.terminated(name, "proxy"), cluster.terminated(name, "shipper")
    assert (proxy["exitCode"], proxy["reason"]) == (143, "Error")
    killing = [e["involvedObject"]["fieldPath"] for e in cluster.store.events(name)
               if e["reason"] == "Killing"]  # fmt: skip
    assert killing == ["spec.initContainers{shipper}", "spec.initContainers{proxy}"]
    assert base["finishedAt"] <= shipper["finishedAt"] <= proxy["finishedAt"]
    # The phase turns terminal only once the sidecars have terminated.
    for s in cluster.store.statuses[name]:
        if s["phase"] == "Succeeded":
            assert all("terminated" in c["state"] for c in s["initContainerStatuses"])
        elif "terminated" in s["containerStatuses"][0]["state"]:
            assert s["phase"] == "Running"


# -- deadlines, eviction, node loss ---------------------------------------


async def test_active_deadline_fails_the_pod(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("deadline", {"runSeconds": 30}, activeDeadlineSeconds=1))
    status = await cluster.finished(name)
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert status["message"] == "Pod was active on the node longer than the specified deadline"
    assert (cluster.terminated(name)["exitCode"], cluster.terminated(name)["reason"]) == (
        143,
        "Error",
    )
    event = cluster.event(name, "DeadlineExceeded")
    assert event["type"] == "Normal"
    assert "Killing" in cluster.reasons(name)


async def test_active_deadline_set_while_running_is_honoured(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("late-deadline", {"runSeconds": 30}))
    await wait_until(lambda: cluster.status(name).get("phase") == "Running")
    await cluster.store.patch(PODS, NS, name, {"spec": {"activeDeadlineSeconds": 1}})
    status = await cluster.finished(name)
    assert status["reason"] == "DeadlineExceeded"


async def test_deadline_while_pulling_marks_the_container_unknown(cluster: Cluster) -> None:
    pod = make_pod("deadpull", {"image": "ErrImagePull:nope"}, activeDeadlineSeconds=1)
    name = await cluster.run(pod)
    status = await cluster.finished(name)
    assert status["reason"] == "DeadlineExceeded"
    term = cluster.terminated(name)
    assert (term["exitCode"], term["reason"]) == (137, "ContainerStatusUnknown")
    assert term["message"] == "The container could not be located when the pod was terminated"


async def test_eviction(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("evict", {"runSeconds": 30, "evictAfterSeconds": 0.1}))
    status = await cluster.finished(name)
    assert (status["phase"], status["reason"]) == ("Failed", "Evicted")
    assert status["message"].startswith("The node was low on resource: memory. ")
    assert "Container base was using" in status["message"]
    disruption = cluster.condition(name, "DisruptionTarget")
    assert (disruption["status"], disruption["reason"]) == ("True", "TerminationByKubelet")
    assert cluster.terminated(name)["exitCode"] == 137
    event = cluster.event(name, "Evicted")
    assert (event["type"], event["message"]) == ("Warning", status["message"])


async def test_node_lost(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("lost", {"runSeconds": 30, "nodeLostAfterSeconds": 0.1}))
    status = await cluster.finished(name)
    assert (status["phase"], status["reason"]) == ("Failed", "NodeLost")
    assert status["message"] == "Node devcluster-node which was running pod lost is unresponsive"
    ready = cluster.condition(name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NodeLost")
    assert cluster.condition(name, "DisruptionTarget")["reason"] == "DeletionByPodGC"
    assert "running" in cluster.container(name)["state"]  # frozen as last reported
    not_ready = [s for s in cluster.store.statuses[name] if "phase" not in s]
    assert not_ready, "Ready=False is reported before the pod is failed"
    await cluster.store.delete(PODS, NS, name)
    await cluster.gone(name)


# -- graceful deletion ----------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "grace", "exit_code", "min_seconds"),
    [
        ({"runSeconds": 30}, 5, 143, 0.0),
        ({"runSeconds": 30, "ignoreSigterm": True}, 1, 137, 0.9),
    ],
)
async def test_graceful_deletion(
    cluster: Cluster, scenario: dict[str, Any], grace: int, exit_code: int, min_seconds: float
) -> None:
    name = await cluster.run(make_pod("del", scenario, terminationGracePeriodSeconds=grace))
    await wait_until(lambda: cluster.status(name).get("phase") == "Running")
    started = time.monotonic()
    await cluster.store.delete(PODS, NS, name)
    await cluster.gone(name, timeout=grace + 3)
    assert time.monotonic() - started >= min_seconds
    last = cluster.store.statuses[name][-1]
    assert last["phase"] == "Failed"
    term = last["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (exit_code, "Error")
    # The pod outlived its final status write: the kubelet's own grace-0 delete removed it.
    assert cluster.store.deletes[-1] == (name, 0)
    assert "Killing" in [e["reason"] for e in cluster.store.events(name)]


async def test_deleting_a_finished_pod_removes_it(cluster: Cluster) -> None:
    name = await cluster.run(make_pod("fin"))
    await cluster.finished(name)
    await cluster.store.delete(PODS, NS, name, grace_period_seconds=30)
    await cluster.gone(name)


async def test_a_bad_scenario_fails_the_pod_with_a_message(cluster: Cluster) -> None:
    pod = make_pod("bad")
    pod["metadata"]["annotations"] = {SCENARIO_ANNOTATION: '{"exitCode": "one"}'}
    name = await cluster.run(pod)
    status = await cluster.finished(name)
    assert status["phase"] == "Failed"
    assert "exitCode must be an integer" in status["message"]
    term = cluster.terminated(name)
    assert (term["exitCode"], term["reason"]) == (128, "StartError")
    # The kubelet survived: the next pod still runs.
    assert (await cluster.finished(await cluster.run(make_pod("after"))))["phase"] == "Succeeded"


# -- files and the xcom sidecar hand-over ---------------------------------


RESULT_UNIT = '{"k": "h\u00e9\u2603\n"}'


def result_bytes(size: int) -> bytes:
    # Multi-byte UTF-8, newlines and no trailing newline: the hand-over must be exact.
    unit = RESULT_UNIT.encode()
    data = (unit * (size // len(unit) + 1))[:size]
    while True:
        try:
            data.decode()
            return data
        except UnicodeDecodeError:
            data = data[:-1] + b"x"


def described(data: bytes) -> Any:
    """The scenario form of ``data``: pod annotations cap at 256 KiB, so repeats are folded."""
    unit = RESULT_UNIT.encode()
    repeat = 0
    while data.startswith(unit * (repeat + 1)):
        repeat += 1
    rest = data[len(unit) * repeat :]
    return {
        "parts": [
            {"text": RESULT_UNIT, "repeat": repeat},
            {"base64": base64.b64encode(rest).decode()},
        ]
    }


def inline(data: bytes) -> bytes:
    """The sidecar's inline hand-over: size and sha256, then the file's bytes."""
    return f"inline:{len(data)}:{hashlib.sha256(data).hexdigest()}:".encode() + data


@pytest.mark.parametrize("size", [0, 10, 4000, 4001, 4096, 500 * 1024])
async def test_xcom_sidecar_hands_the_result_over(cluster: Cluster, size: int) -> None:
    data = result_bytes(size)
    assert len(data) == size
    content = described(data)
    name = await cluster.run(
        xcom_pod(f"xcom-{size}", {"files": {"/airflow/xcom/return.json": content}})
    )
    status = await cluster.finished(name)
    assert status["phase"] == "Succeeded"
    term = cluster.terminated(name, "airflow-xcom-sidecar")
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    message = term["message"]
    sidecar_log = cluster.log(name, "airflow-xcom-sidecar")
    if size == 0:
        assert message == "none"
        assert sidecar_log == b""
    elif size <= 4000:
        assert message.encode() == inline(data)
        assert sidecar_log == b""
    else:
        assert message == f"log:{size}:{hashlib.sha256(data).hexdigest()}"
        assert sidecar_log == data


async def test_inline_results_are_cut_by_the_pod_message_budget(cluster: Cluster) -> None:
    # A real kubelet gives each of N containers 12 KiB / N of termination message: with four
    # containers an inline result of 4000 bytes arrives cut to 3072 bytes.
    data = result_bytes(4000)
    pod = xcom_pod("xcom-budget", {"files": {"/airflow/xcom/return.json": data.decode()}})
    pod["spec"]["initContainers"] += [
        {"name": "i1", "image": "a:1"},
        {"name": "i2", "image": "a:1"},
    ]
    name = await cluster.run(pod)
    await cluster.finished(name)
    message = cluster.terminated(name, "airflow-xcom-sidecar")["message"]
    assert message == (inline(data))[: 12 * 1024 // 4].decode("utf-8", errors="replace")


async def test_xcom_sidecar_without_a_file_says_none(cluster: Cluster) -> None:
    name = await cluster.run(xcom_pod("xcom-none", {"exitCode": 1}))
    status = await cluster.finished(name)
    assert status["phase"] == "Failed"
    assert cluster.terminated(name, "airflow-xcom-sidecar")["message"] == "none"


async def test_result_is_handed_over_when_the_base_container_fails(cluster: Cluster) -> None:
    scenario = {"exitCode": 2, "files": {"/airflow/xcom/return.json": '{"partial": true}'}}
    name = await cluster.run(xcom_pod("xcom-fail", scenario))
    await cluster.finished(name)
    assert cluster.terminated(name)["exitCode"] == 2
    msg = cluster.terminated(name, "airflow-xcom-sidecar")["message"]
    assert msg == inline(b'{"partial": true}').decode()


async def test_files_outside_the_shared_volume_are_not_seen_by_the_sidecar(
    cluster: Cluster,
) -> None:
    pod = xcom_pod("xcom-private", {"files": {"/tmp/return.json": "{}"}})
    name = await cluster.run(pod)
    await cluster.finished(name)
    assert cluster.terminated(name, "airflow-xcom-sidecar")["message"] == "none"


async def test_exec_mode_sidecar_keeps_running_until_the_pod_is_deleted(
    cluster: Cluster,
) -> None:
    name = await cluster.run(
        xcom_pod("xcom-exec", {"files": {"/airflow/xcom/return.json": "1"}}, native=False)
    )
    await wait_until(lambda: "terminated" in cluster.state(name))
    await asyncio.sleep(0.1)  # nothing to await: the sidecar must simply stay up
    assert cluster.status(name)["phase"] == "Running"
    assert "running" in cluster.container(name, "airflow-xcom-sidecar")["state"]
    await cluster.store.delete(PODS, NS, name, grace_period_seconds=2)
    await cluster.gone(name)
    last = cluster.store.statuses[name][-1]
    assert last["phase"] == "Failed"
    sidecar = next(s for s in last["containerStatuses"] if s["name"] == "airflow-xcom-sidecar")
    assert sidecar["state"]["terminated"]["exitCode"] == 143


# -- restart of the kubelet -----------------------------------------------


async def test_pods_created_before_the_kubelet_starts_are_run() -> None:
    store = FakeStore()
    await store.create(PODS, NS, make_pod("early"))
    kubelet = Kubelet(store)  # type: ignore[arg-type]
    task = asyncio.create_task(kubelet.run())
    try:
        c = Cluster(store, kubelet)
        assert (await c.finished("early"))["phase"] == "Succeeded"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
