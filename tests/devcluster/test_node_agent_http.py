"""`python -m devcluster.node` against devcluster's API server over HTTP, as against any
cluster: devcluster runs without its in-process kubelet, the agent registers its node,
binds (--schedule: devcluster has no scheduler), plays the scenario, and serves the logs
that devcluster's pods/log proxies to its HTTPS endpoint, as kube-apiserver does."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import DevCluster
from devcluster.errors import ApiError
from devcluster.node import AgentProcess
from devcluster.pytest_plugin import wait_for
from devcluster.resources import EVENTS, LEASES, NAMESPACES, NODES, PODS
from devcluster.scenario import SCENARIO_ANNOTATION

KUBECTL = Path(sys.executable).parent / "kubectl"
NODE = "agent-node"
NS = "agent"


@pytest.fixture(scope="module")
def agent_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = DevCluster(kubelet=False).start()
    assert cluster.kubeconfig_path is not None
    agent = AgentProcess(
        cluster.kubeconfig_path,
        "--schedule",
        "--lease-seconds",
        "0.2",
        name=NODE,
        log_path=tmp_path_factory.mktemp("agent") / "agent.log",
    )
    try:
        agent.start()
        assert agent.endpoint.startswith("https://127.0.0.1:"), agent.endpoint
        cluster.call(cluster.store.create(NAMESPACES, None, {"metadata": {"name": NS}}))
        yield cluster
    finally:
        agent.stop()
        cluster.stop()


def kubectl(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig_path), "-n", NS, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def pod(name: str, scenario: dict[str, Any], grace: int = 30) -> dict[str, Any]:
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


def get_pod(cluster: DevCluster, name: str) -> dict[str, Any] | None:
    try:
        return cluster.call(cluster.store.get(PODS, NS, name))
    except ApiError:
        return None


def test_the_node_registers_ready_with_its_endpoint_and_renews_its_lease(
    agent_cluster: DevCluster,
) -> None:
    node = agent_cluster.call(agent_cluster.store.get(NODES, None, NODE))
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
    assert node["status"]["allocatable"]["pods"] == "110"
    # NodeTaint admission tainted the new node not-ready; the Ready agent lifted it.
    assert not (node.get("spec") or {}).get("taints")
    first = agent_cluster.call(agent_cluster.store.get(LEASES, "kube-node-lease", NODE))
    assert first["spec"]["holderIdentity"] == NODE
    wait_for(
        lambda: (
            agent_cluster.call(agent_cluster.store.get(LEASES, "kube-node-lease", NODE))["spec"][
                "renewTime"
            ]
            != first["spec"]["renewTime"]
        ),
        what="the lease to be renewed",
    )


def test_a_pod_runs_to_its_exit_code_with_logs_through_the_node_proxy(
    agent_cluster: DevCluster,
) -> None:
    scenario = {"logs": "one\ntwo\nthree\n", "runSeconds": 1.0, "exitCode": 3}
    agent_cluster.call(agent_cluster.store.create(PODS, NS, pod("runs", scenario)))
    wait_for(
        lambda: (get_pod(agent_cluster, "runs") or {}).get("status", {}).get("phase") == "Running",
        what="Running",
    )
    followed = kubectl(agent_cluster, "logs", "-f", "runs")
    assert (followed.returncode, followed.stdout) == (0, "one\ntwo\nthree\n"), followed.stderr
    status = wait_for(
        lambda: (
            (s := (get_pod(agent_cluster, "runs") or {}).get("status", {})).get("phase") == "Failed"
            and s
        ),
        what="Failed",
    )
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert status["hostIP"] == "127.0.0.1"
    tail = kubectl(agent_cluster, "logs", "--tail=1", "runs")
    assert tail.stdout == "three\n", tail.stderr
    limited = kubectl(agent_cluster, "logs", "--limit-bytes=5", "--timestamps", "runs")
    assert len(limited.stdout) == 5 and limited.stdout[:2] == "20", limited.stdout
    previous = kubectl(agent_cluster, "logs", "--previous", "runs")
    assert 'previous terminated container "base" in pod "runs" not found' in previous.stderr
    events = agent_cluster.call(agent_cluster.store.list(EVENTS, NS))
    kubelet_events = [
        (e["reason"], e["source"]) for e in events if e["involvedObject"]["name"] == "runs"
    ]
    assert ("Started", {"component": "kubelet", "host": NODE}) in kubelet_events
    assert ("Scheduled", {}) in kubelet_events  # kube-scheduler's events have no source


def test_graceful_deletion_ends_with_the_agents_grace_zero_delete(
    agent_cluster: DevCluster,
) -> None:
    scenario = {"runSeconds": 60, "ignoreSigterm": True}
    agent_cluster.call(agent_cluster.store.create(PODS, NS, pod("slow", scenario, grace=1)))
    wait_for(
        lambda: (get_pod(agent_cluster, "slow") or {}).get("status", {}).get("phase") == "Running",
        what="Running",
    )
    started = time.monotonic()
    deleted = kubectl(agent_cluster, "delete", "pod", "slow", "--wait=true")
    took = time.monotonic() - started
    assert deleted.returncode == 0, deleted.stderr
    assert get_pod(agent_cluster, "slow") is None
    # SIGTERM ignored: the kubelet kills after the 1 s grace period, then deletes.
    assert 1.0 <= took < 10, took
    deletes = [r for r in agent_cluster.requests.records if r.verb == "delete" and r.name == "slow"]
    assert (deletes[-1].user_agent or "").startswith("devcluster-node"), deletes
