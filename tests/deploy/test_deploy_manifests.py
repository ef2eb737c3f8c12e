"""Every kustomize overlay renders, validates against Kubernetes 1.37, and keeps its promises."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from deploy_helpers import OVERLAYS, ROOT, only, render

K8S_VERSION = "1.37"
NAMESPACE = "taskrun-system"
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterKopfPeering",
}


def crd_schemas(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every CRD version in a render."""
    schemas = {}
    for crd in (o for o in objs if o["kind"] == "CustomResourceDefinition"):
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate(obj: dict[str, Any], schemas: dict[tuple[str, str], dict[str, Any]]) -> None:
    custom = schemas.get((obj["apiVersion"], obj["kind"]))
    if custom is not None:
        # kubernetes-validate only knows built-in kinds; a custom resource is checked
        # against the schema of its CRD from the same render instead.
        jsonschema.validate(obj, custom)
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def deployment(overlay: str) -> dict[str, Any]:
    return only(render(overlay), "Deployment", "taskrun-controller")


def container(overlay: str) -> dict[str, Any]:
    containers = deployment(overlay)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def flag(args: list[str], name: str) -> str | None:
    for arg in args:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_renders_and_validates_strictly(overlay: str) -> None:
    objs = render(overlay)
    schemas = crd_schemas(objs)
    assert ("taskrun.dev/v1alpha1", "TaskRun") in schemas
    for obj in objs:
        validate(obj, schemas)


def test_strict_validation_refuses_an_unknown_field() -> None:
    # The check above is only worth something if a typo in a manifest makes it fail.
    objs = render("base")
    broken = copy.deepcopy(only(objs, "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken, crd_schemas(objs))


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_namespaced_objects_land_in_the_controller_namespace(overlay: str) -> None:
    for obj in render(overlay):
        ns = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert ns is None, f"{obj['kind']} {obj['metadata']['name']} is cluster-scoped"
        else:
            assert ns == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']} in {ns!r}"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_controller_runs_restricted_on_a_read_only_root(overlay: str) -> None:
    pod = deployment(overlay)["spec"]["template"]["spec"]
    c = container(overlay)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged", False) is False
    # The only writable path is an emptyDir on /tmp.
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert set(mounts) == {"/tmp"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert all("hostPath" not in v for v in pod["volumes"])
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_probes_and_metrics_service_point_at_the_ports_the_controller_opens(overlay: str) -> None:
    c = container(overlay)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert str(ports["health"]) == flag(c["args"], "health-port")
    assert str(ports["metrics"]) == flag(c["args"], "metrics-port")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] == "health", probe
        assert c[probe]["httpGet"]["path"] == "/healthz", probe
    objs = render(overlay)
    service = only(objs, "Service", "taskrun-controller-metrics")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    pod_labels = deployment(overlay)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_bindings_grant_to_the_service_account_the_pods_run_as(overlay: str) -> None:
    objs = render(overlay)
    sa = deployment(overlay)["spec"]["template"]["spec"]["serviceAccountName"]
    only(objs, "ServiceAccount", sa)
    bindings = [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for b in bindings:
        ns_default = b["metadata"].get("namespace")
        assert [(s["kind"], s["name"], s.get("namespace", ns_default)) for s in b["subjects"]] == [
            ("ServiceAccount", sa, NAMESPACE)
        ]
        role_kind = b["roleRef"]["kind"]
        only(objs, role_kind, b["roleRef"]["name"])


def test_image_tag_follows_the_package_version() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version
    assert container("base")["image"] == f"taskrun-controller:{version.group(1)}"


def test_base_watches_all_namespaces_with_one_replica_and_no_overlap() -> None:
    d = deployment("base")
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["strategy"]["type"] == "Recreate"
    args = container("base")["args"]
    assert "--all-namespaces" in args
    # Without peering, kopf would still join a "default" peering object if another
    # operator created one; standalone keeps the base away from it (and its RBAC).
    assert "--standalone" in args and flag(args, "peering") is None


def namespaced_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cluster_scoped = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
    kept = []
    for rule in rules:
        resources = [
            r for g in rule["apiGroups"] for r in rule["resources"] if (g, r) not in cluster_scoped
        ]
        if resources:
            kept.append({**rule, "resources": sorted(set(resources))})
    return kept


def test_single_namespace_has_no_cluster_wide_rbac_and_watches_its_own_namespace() -> None:
    objs = render("single-namespace")
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    c = container("single-namespace")
    assert flag(c["args"], "namespace") == "$(POD_NAMESPACE)"
    assert "--all-namespaces" not in c["args"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # The Role is the base ClusterRole minus what only exists cluster-wide: keep them in step.
    role = only(objs, "Role", "taskrun-controller")
    cluster_role = only(render("base"), "ClusterRole", "taskrun-controller")
    assert role["rules"] == namespaced_rules(cluster_role["rules"])


def test_ha_runs_two_peered_replicas_that_a_drain_cannot_take_together() -> None:
    objs = render("ha")
    d = deployment("ha")
    assert d["spec"]["replicas"] == 2
    args = container("ha")["args"]
    assert "--standalone" not in args and "--all-namespaces" in args
    peering = flag(args, "peering")
    assert peering and re.fullmatch(r"[a-z0-9-]+", peering)
    only(objs, "ClusterKopfPeering", peering)
    crds = {o["metadata"]["name"] for o in objs if o["kind"] == "CustomResourceDefinition"}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= crds
    rules = only(objs, "ClusterRole", "taskrun-controller-peering")["rules"]
    granted = {
        (v, r, tuple(rule.get("resourceNames", ())))
        for rule in rules
        if rule["apiGroups"] == ["kopf.dev"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert ("patch", "clusterkopfpeerings", (peering,)) in granted
    assert ("watch", "clusterkopfpeerings", ()) in granted
    pdb = only(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_crds_directory_stays_applyable_with_kubectl_apply_f() -> None:
    # `kubectl apply -f crds/` reads every .yaml/.yml/.json file as an object; the
    # kustomization that lets deploy/base include the CRD must not be one of them.
    crds = ROOT / "crds"
    assert (crds / "Kustomization").is_file()
    manifests = sorted(p.name for p in crds.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    assert manifests == ["taskrun.yaml"]
