"""What only a real API server and controller manager prove: version stamping, the CRD
applied both ways, RBAC authorization of a ServiceAccount token, Pod Security Admission,
garbage collection, namespace lifecycle and the ServiceAccount controller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from real_kubectl import Kubectl

from realcluster import KUBERNETES_VERSION
from realcluster.pytest_plugin import RealCluster

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.realcluster, pytest.mark.timeout(180)]


def test_version_is_stamped(realcluster: RealCluster, kubectl_real: Kubectl) -> None:
    assert KUBERNETES_VERSION == "v1.37.2"
    assert realcluster.api.call("GET", "/version")["gitVersion"] == KUBERNETES_VERSION
    versions = json.loads(kubectl_real.run("version", "-o", "json"))
    assert versions["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
    assert versions["serverVersion"]["minor"] == "37"


# Found here first: the real API server estimates five CEL rules over unbounded arrays
# (env[].valueFrom, volumes[], projected sources[]) at 1.05x-1.45x the cost budget, which
# devcluster's cel-python does not estimate. The CRD needs maxItems/maxLength (issue 12,
# part 6); strict, so the fix flips this test to a failure until the mark goes.
@pytest.mark.xfail(strict=True, reason="CRD CEL rules exceed the real API server's cost budget")
def test_crd_applies_client_side_and_server_side(kubectl_real: Kubectl) -> None:
    kubectl_real.run("apply", "-f", str(ROOT / "crds"))
    kubectl_real.run("apply", "--server-side", "-f", str(ROOT / "crds"))
    kubectl_real.run(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/taskruns.taskrun.dev"
    )
    managers = json.loads(kubectl_real.run("get", "crd/taskruns.taskrun.dev", "-o", "json"))
    assert "kubectl" in {m["manager"] for m in managers["metadata"]["managedFields"]}
    assert json.loads(kubectl_real.run("get", "taskruns", "-o", "json"))["items"] == []


def test_service_account_without_rbac_is_forbidden(
    realcluster: RealCluster, realcluster_ns: str, kubectl_real: Kubectl, tmp_path: Path
) -> None:
    config = realcluster.service_account_kubeconfig(realcluster_ns, "nobody")
    nobody = Kubectl(config, tmp_path / "nobody-cache", realcluster_ns)
    refusal = nobody.fails("get", "configmaps")
    # 403, not 401: the token authenticated and authorization said no.
    assert "Forbidden" in refusal
    assert f"system:serviceaccount:{realcluster_ns}:nobody" in refusal

    kubectl_real.run("create", "role", "read-cm", "--verb=list", "--resource=configmaps")
    kubectl_real.run(
        "create", "rolebinding", "read-cm", "--role=read-cm",
        f"--serviceaccount={realcluster_ns}:nobody",
    )  # fmt: skip
    assert "kube-root-ca.crt" in nobody.run("get", "configmaps", "-o", "name")
    assert "Forbidden" in nobody.fails("get", "secrets")


def _pod(name: str, container: dict[str, object], **spec: object) -> str:
    image = {"name": "main", "image": "busybox:1.36", **container}
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
         "spec": {"containers": [image], **spec}}
    )  # fmt: skip


def test_pod_security_restricted_refuses_a_privileged_pod(
    realcluster: RealCluster, realcluster_ns: str, kubectl_real: Kubectl
) -> None:
    kubectl_real.run(
        "label", "namespace", realcluster_ns, "pod-security.kubernetes.io/enforce=restricted"
    )
    refusal = kubectl_real.fails(
        "create", "-f", "-", stdin=_pod("privileged", {"securityContext": {"privileged": True}})
    )
    assert 'violates PodSecurity "restricted:latest"' in refusal
    assert "privileged" in refusal

    restricted = {
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    }
    kubectl_real.run("create", "-f", "-", stdin=_pod("compliant", restricted))
    pod = json.loads(kubectl_real.run("get", "pod", "compliant", "-o", "json"))
    # The ServiceAccount admission plugin is on: the default account and its token volume.
    assert pod["spec"]["serviceAccountName"] == "default"
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])


def test_garbage_collector_deletes_dependents(kubectl_real: Kubectl) -> None:
    kubectl_real.run("create", "configmap", "owner")
    uid = kubectl_real.run("get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}")
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
    }
    kubectl_real.run("create", "-f", "-", stdin=json.dumps(dependent))
    kubectl_real.run("delete", "configmap", "owner", "--cascade=background")
    kubectl_real.run("wait", "--for=delete", "configmap/dependent", "--timeout=90s")


def test_namespace_deletion_completes_and_default_service_account_appears(
    realcluster: RealCluster, kubectl_real: Kubectl
) -> None:
    name = "real-ns-lifecycle"
    realcluster.create_namespace(name)
    kubectl_real.run("wait", "-n", name, "--for=create", "serviceaccount/default", "--timeout=60s")
    kubectl_real.run(
        "wait", "-n", name, "--for=create", "configmap/kube-root-ca.crt", "--timeout=60s"
    )
    kubectl_real.run("create", "-n", name, "configmap", "content")
    # --wait (the default) returns once the namespace controller has emptied and removed it.
    kubectl_real.run("delete", "namespace", name, "--timeout=90s")
    assert "NotFound" in kubectl_real.fails("get", "namespace", name)


def test_a_node_identity_may_register_only_its_own_node(
    realcluster: RealCluster, tmp_path: Path
) -> None:
    node = Kubectl(realcluster.plane.node_kubeconfig("real-node-a"), tmp_path / "cache", None)

    def node_object(name: str) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})

    # The Node authorizer and the NodeRestriction admission plugin, as a kubelet meets them.
    assert "Forbidden" in node.fails("create", "-f", "-", stdin=node_object("real-node-b"))
    assert "Forbidden" in node.fails("get", "secrets", "-A")
    node.run("create", "-f", "-", stdin=node_object("real-node-a"))
    assert "Forbidden" in node.fails("delete", "node", "real-node-a")  # only an admin may
    realcluster.api.call("DELETE", "/api/v1/nodes/real-node-a")
