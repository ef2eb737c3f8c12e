"""The handle a test holds: one interface over devcluster, the real control plane or any
cluster a kubeconfig reaches."""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from testcluster import kubeconfig
from testcluster.client import Kube

if TYPE_CHECKING:
    import kopf

    from devcluster import DevCluster
    from devcluster.accounting import RequestLog

FLAVORS = ("devcluster", "real", "kubeconfig")
# What runs the pods of --cluster=real.
NODES = ("agent", "real")


@dataclass(frozen=True)
class Traits:
    """What a cluster's node offers beyond the Kubernetes API."""

    # Pods follow devcluster's scenario annotation (devcluster's kubelet or the node agent).
    scenarios: bool
    # What runs the pods, for skip messages.
    node: str
    # The result sidecar image the controller must use: the real node has no registry, only
    # its locally built images. None: the controller's default.
    sidecar_image: str | None = None


TRAITS = {
    "devcluster": Traits(scenarios=True, node="devcluster's kubelet"),
    "real": Traits(scenarios=True, node="the node agent"),
    "kubeconfig": Traits(scenarios=False, node="the cluster's own nodes"),
}


class Cluster(Kube):
    """A Kubernetes API for tests, reached over HTTP(S) through a kubeconfig.

    ``requests`` is the request accounting (devcluster's own, or the real API server's
    audit log); ``devcluster`` is the simulator for the tests marked devcluster_only.
    """

    def __init__(
        self,
        flavor: str,
        kubeconfig_path: Path,
        *,
        requests: RequestLog | None = None,
        devcluster: DevCluster | None = None,
        controller_kubeconfig: Path | None = None,
        traits: Traits | None = None,
    ) -> None:
        super().__init__(kubeconfig.load(kubeconfig_path))
        self.flavor = flavor
        self.traits = traits or TRAITS[flavor]
        self.kubeconfig_path = Path(kubeconfig_path)
        # What the controller under test logs in with: on the real control plane its
        # ServiceAccount's token, bound to the shipped ClusterRole (testcluster.rbac).
        self.controller_kubeconfig = Path(controller_kubeconfig or kubeconfig_path)
        # The controller's ServiceAccount (namespace, name) where it runs as one.
        self.controller_account: tuple[str, str] | None = None
        self._requests = requests
        self._devcluster = devcluster

    def __repr__(self) -> str:
        return f"<Cluster {self.flavor} {self.endpoint.server}>"

    @property
    def url(self) -> str:
        return self.endpoint.server

    @property
    def requests(self) -> RequestLog:
        """Every request the API server served; skips the test where nobody counts them."""
        if self._requests is None:
            pytest.skip(f"--cluster={self.flavor} has no request accounting (pass --audit-log)")
        return self._requests

    @property
    def has_requests(self) -> bool:
        return self._requests is not None

    @property
    def devcluster(self) -> DevCluster:
        """The simulator behind this handle (fault plans, store internals)."""
        if self._devcluster is None:
            pytest.skip(f"needs devcluster, not --cluster={self.flavor}")
        return self._devcluster

    def require_scenarios(self) -> None:
        """Skip unless pods play devcluster's scenario annotation."""
        if not self.traits.scenarios:
            pytest.skip(
                f"needs pods that play devcluster's scenarios; --cluster={self.flavor} runs "
                f"them on {self.traits.node}"
            )

    @property
    def controller_settings(self) -> dict[str, Any]:
        """What the controller under test needs on this cluster, as Settings fields."""
        image = self.traits.sidecar_image
        return {} if image is None else {"xcom_sidecar_image": image}

    @property
    def controller_flags(self) -> list[str]:
        """``controller_settings`` as `python -m controller` flags."""
        image = self.traits.sidecar_image
        return [] if image is None else ["--xcom-sidecar-image", image]

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        meta: dict[str, Any] = {"name": name}
        if labels:
            meta["labels"] = labels
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        return name

    def grant_controller(self, name: str, rules: list[dict[str, Any]]) -> None:
        """Add a ClusterRole bound to the controller's ServiceAccount, as a user's overlay
        would (e.g. pods/exec for --xcom-mode=exec); nothing to do where it runs as admin."""
        if self.controller_account is None:
            return
        namespace, account = self.controller_account
        rbac = "rbac.authorization.k8s.io/v1"
        self.apply(
            {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
        )
        self.apply(
            {
                "apiVersion": rbac,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            }
        )

    def credentials(self, path: Path | None = None) -> kopf.ConnectionInfo:
        """kopf's ConnectionInfo for a kubeconfig (default: the admin's): what
        controller.k8s.Client takes."""
        import kopf

        source = Path(path or self.kubeconfig_path)
        # Certificates and keys as files: main's controller.k8s reads kopf's *_data as PEM,
        # while a kubeconfig carries them base64-encoded (fixed on the secio branch).
        config = yaml.safe_load(source.read_text())
        scratch = Path(tempfile.mkdtemp(prefix="testcluster-credentials-"))
        for section, inner in (("clusters", "cluster"), ("users", "user")):
            for entry in config.get(section) or []:
                fields = entry.get(inner) or {}
                for key in ("certificate-authority", "client-certificate", "client-key"):
                    data = fields.pop(f"{key}-data", None)
                    if data:
                        file = scratch / f"{entry['name']}-{key}.pem"
                        file.write_bytes(base64.b64decode(data))
                        fields[key] = str(file)
        flat = scratch / "kubeconfig"
        flat.write_text(yaml.safe_dump(config))
        old = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = str(flat)
        try:
            info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        finally:
            if old is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = old
        assert info is not None
        return info
