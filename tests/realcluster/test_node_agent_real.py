"""The node agent (devcluster's kubelet, `python -m devcluster.node`) as the node of the
real control plane: kube-scheduler binds to it, kube-apiserver proxies `kubectl logs` to
its HTTPS endpoint, and its status writes, Events and deletes pass real validation."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from real_kubectl import Kubectl

from devcluster.httpstore import load_kubeconfig
from devcluster.node import NODE_NAME, AgentProcess
from devcluster.scenario import SCENARIO_ANNOTATION
from realcluster.client import ApiError
from realcluster.pytest_plugin import RealCluster

pytestmark = [pytest.mark.realcluster, pytest.mark.timeout(180)]

NODE = NODE_NAME


def wait(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def make_pod(name: str, scenario: dict[str, Any], grace: int = 30) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {SCENARIO_ANNOTATION: json.dumps(scenario)}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": grace,
            "containers": [{"name": "base", "image": "busybox:1.36"}],
        },
    }


class Pods:
    def __init__(self, cluster: RealCluster, namespace: str) -> None:
        self.api = cluster.api
        self.base = f"/api/v1/namespaces/{namespace}/pods"
        # The ServiceAccount admission refuses pods until the namespace's default account
        # exists (the ServiceAccount controller makes it).
        sa = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
        wait(lambda: self._exists(sa), "the default ServiceAccount")

    def _exists(self, path: str) -> bool:
        try:
            self.api.call("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create(self, pod: dict[str, Any]) -> None:
        self.api.call("POST", self.base, pod)

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.api.call("GET", f"{self.base}/{name}"))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def phase(self, name: str) -> str | None:
        return ((self.get(name) or {}).get("status") or {}).get("phase")


def test_the_node_is_ready_untainted_with_a_lease(
    realcluster: RealCluster, realcluster_node: AgentProcess
) -> None:
    node = realcluster.api.call("GET", f"/api/v1/nodes/{NODE}")
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert realcluster_node.endpoint == f"https://127.0.0.1:{port}"
    # kube-apiserver's NodeTaint admission tainted it not-ready; Ready, the agent lifted it.
    wait(
        lambda: (
            not (realcluster.api.call("GET", f"/api/v1/nodes/{NODE}").get("spec") or {}).get(
                "taints"
            )
        ),
        "the not-ready taint to go",
    )
    lease = realcluster.api.call(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"
    )
    assert lease["spec"]["holderIdentity"] == NODE
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


def test_scheduled_run_to_exit_code_logs_through_the_node_proxy_and_events(
    realcluster: RealCluster,
    realcluster_ns: str,
    kubectl_real: Kubectl,
    realcluster_node: AgentProcess,
) -> None:
    pods = Pods(realcluster, realcluster_ns)
    scenario = {"logs": "alpha\nbeta\ngamma\n", "runSeconds": 3.0, "exitCode": 0}
    pods.create(make_pod("ok", scenario))
    pods.create(make_pod("bad", {"logs": "oops\n", "runSeconds": 0.5, "exitCode": 3}))
    # kube-scheduler, not the agent, binds: the agent has no --schedule here.
    wait(lambda: (pods.get("ok") or {}).get("spec", {}).get("nodeName") == NODE, "binding")
    wait(lambda: pods.phase("ok") == "Running", "Running")
    followed = kubectl_real.run("logs", "-f", "ok")
    assert followed == "alpha\nbeta\ngamma\n"
    wait(lambda: pods.phase("ok") == "Succeeded", "Succeeded")
    status = (pods.get("ok") or {})["status"]
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert status["hostIP"] == "127.0.0.1"
    assert kubectl_real.run("logs", "--tail=1", "ok") == "gamma\n"
    stamped = kubectl_real.run("logs", "--timestamps", "--limit-bytes=10", "ok")
    assert len(stamped) == 10 and stamped.startswith("20"), stamped
    wait(lambda: pods.phase("bad") == "Failed", "Failed")
    bad = (pods.get("bad") or {})["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (bad["exitCode"], bad["reason"]) == (3, "Error")
    assert kubectl_real.run("logs", "bad") == "oops\n"
    assert 'previous terminated container "base"' in kubectl_real.fails("logs", "--previous", "bad")

    events = json.loads(
        kubectl_real.run("get", "events", "--field-selector=involvedObject.name=ok", "-o", "json")
    )["items"]
    by_reason = {e["reason"]: e for e in events}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= set(by_reason), sorted(by_reason)
    assert by_reason["Started"]["source"] == {"component": "kubelet", "host": NODE}
    assert by_reason["Started"]["involvedObject"]["fieldPath"] == "spec.containers{base}"
    assert by_reason["Scheduled"]["reportingComponent"] == "default-scheduler"


def test_graceful_deletion_completes(
    realcluster: RealCluster,
    realcluster_ns: str,
    kubectl_real: Kubectl,
    realcluster_node: AgentProcess,
) -> None:
    pods = Pods(realcluster, realcluster_ns)
    pods.create(make_pod("slow", {"runSeconds": 120, "ignoreSigterm": True}, grace=2))
    wait(lambda: pods.phase("slow") == "Running", "Running")
    uid = (pods.get("slow") or {})["metadata"]["uid"]
    started = time.monotonic()
    kubectl_real.run("delete", "pod", "slow", "--wait=true", "--timeout=60s")
    took = time.monotonic() - started
    assert pods.get("slow") is None
    # SIGTERM ignored: killed when the 2 s grace period is over, then the grace-0 delete.
    assert 2.0 <= took < 30, took
    killing = json.loads(
        kubectl_real.run(
            "get", "events", f"--field-selector=involvedObject.uid={uid}", "-o", "json"
        )
    )["items"]
    assert "Killing" in {e["reason"] for e in killing}


def test_kubectl_exec_through_the_api_server_reaches_the_agent_over_spdy(
    realcluster: RealCluster,
    realcluster_ns: str,
    kubectl_real: Kubectl,
    realcluster_node: AgentProcess,
) -> None:
    pods = Pods(realcluster, realcluster_ns)
    pods.create(make_pod("shell", {"runSeconds": 120}, grace=0))
    wait(lambda: pods.phase("shell") == "Running", "Running")
    # kubectl speaks WebSocket to kube-apiserver, which speaks SPDY to the node.
    assert kubectl_real.run("exec", "shell", "--", "sh", "-c", "echo hello") == "hello\n"
    failed = kubectl_real.fails("exec", "shell", "--", "sh", "-c", "exit 3")
    assert "command terminated with exit code 3" in failed, failed
    assert "nosuch: not found" in kubectl_real.fails("exec", "shell", "--", "nosuch")
    # A v4 WebSocket client (the controller's exec, the Python client) is passed through
    # to the node as WebSocket, not translated.
    assert asyncio.run(websocket_exec(realcluster, realcluster_ns, "shell", "echo v4")) == (
        b"v4\n",
        {"metadata": {}, "status": "Success"},
    )
    _, status = asyncio.run(websocket_exec(realcluster, realcluster_ns, "shell", "exit 4"))
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}], status


async def websocket_exec(
    cluster: RealCluster, namespace: str, pod: str, script: str
) -> tuple[bytes, dict[str, Any]]:
    """pods/exec as the controller does it: WebSocket, v4.channel.k8s.io; stdout, Status."""
    credentials = load_kubeconfig(cluster.kubeconfig)
    query = [("command", "sh"), ("command", "-c"), ("command", script), ("stdout", "true")]
    url = f"{credentials.server}/api/v1/namespaces/{namespace}/pods/{pod}/exec"
    stdout, status = b"", {}
    connector = aiohttp.TCPConnector(ssl=credentials.ssl)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.ws_connect(url, params=query, protocols=("v4.channel.k8s.io",)) as ws,
    ):
        async for message in ws:
            if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                continue
            if message.data[0] == 1:
                stdout += message.data[1:]
            elif message.data[0] == 3:
                status = json.loads(message.data[1:])
    return stdout, status
