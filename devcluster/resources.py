"""The resource types devcluster serves: built-in ones and those CRDs register."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class ResourceKey:
    """Identifies a served resource: API group, version and plural name."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.plural}.{self.version}.{self.group}" if self.group else self.plural


@dataclasses.dataclass
class ResourceInfo:
    """What discovery says about a resource and how the store treats it."""

    key: ResourceKey
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    # Field selectors the apiserver accepts beyond metadata.name/namespace.
    selectable_fields: tuple[str, ...] = ()
    # Set for custom resources: the CRD version entry (schema, printer columns).
    crd_version: dict[str, Any] | None = None
    crd_name: str = ""
    # Events live in one storage and are served in two API versions.
    storage: ResourceKey | None = None

    @property
    def storage_key(self) -> ResourceKey:
        return self.storage or self.key

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def verbs(self) -> list[str]:
        return [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]


NAMESPACES = ResourceKey("", "v1", "namespaces")
PODS = ResourceKey("", "v1", "pods")
EVENTS = ResourceKey("", "v1", "events")
NODES = ResourceKey("", "v1", "nodes")
SERVICEACCOUNTS = ResourceKey("", "v1", "serviceaccounts")
CONFIGMAPS = ResourceKey("", "v1", "configmaps")
SECRETS = ResourceKey("", "v1", "secrets")
SERVICES = ResourceKey("", "v1", "services")
EVENTS_V1 = ResourceKey("events.k8s.io", "v1", "events")
LEASES = ResourceKey("coordination.k8s.io", "v1", "leases")
CRDS = ResourceKey("apiextensions.k8s.io", "v1", "customresourcedefinitions")
# Stored and served, but no controller acts on them: enough for `kubectl apply -k deploy/`.
DEPLOYMENTS = ResourceKey("apps", "v1", "deployments")
PDBS = ResourceKey("policy", "v1", "poddisruptionbudgets")
ROLES = ResourceKey("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = ResourceKey("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTERROLES = ResourceKey("rbac.authorization.k8s.io", "v1", "clusterroles")
CLUSTERROLEBINDINGS = ResourceKey("rbac.authorization.k8s.io", "v1", "clusterrolebindings")

_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)


def builtin_resources() -> list[ResourceInfo]:
    """The built-in resources, in discovery order."""
    return [
        ResourceInfo(
            NAMESPACES,
            "Namespace",
            False,
            "namespace",
            ("ns",),
            status_subresource=True,
            selectable_fields=("status.phase",),
        ),
        ResourceInfo(
            PODS,
            "Pod",
            True,
            "pod",
            ("po",),
            ("all",),
            status_subresource=True,
            selectable_fields=(
                "status.phase",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.podIP",
                "status.nominatedNodeName",
            ),
        ),
        ResourceInfo(EVENTS, "Event", True, "event", ("ev",), selectable_fields=_EVENT_FIELDS),
        ResourceInfo(
            NODES,
            "Node",
            False,
            "node",
            ("no",),
            status_subresource=True,
            selectable_fields=("spec.unschedulable",),
        ),
        ResourceInfo(SERVICEACCOUNTS, "ServiceAccount", True, "serviceaccount", ("sa",)),
        ResourceInfo(CONFIGMAPS, "ConfigMap", True, "configmap", ("cm",)),
        ResourceInfo(SECRETS, "Secret", True, "secret", (), selectable_fields=("type",)),
        ResourceInfo(
            SERVICES, "Service", True, "service", ("svc",), ("all",), status_subresource=True
        ),
        ResourceInfo(
            EVENTS_V1,
            "Event",
            True,
            "event",
            ("ev",),
            storage=EVENTS,
            selectable_fields=_EVENT_FIELDS,
        ),
        ResourceInfo(LEASES, "Lease", True, "lease"),
        ResourceInfo(
            DEPLOYMENTS,
            "Deployment",
            True,
            "deployment",
            ("deploy",),
            ("all",),
            status_subresource=True,
        ),
        ResourceInfo(
            PDBS,
            "PodDisruptionBudget",
            True,
            "poddisruptionbudget",
            ("pdb",),
            status_subresource=True,
        ),
        ResourceInfo(ROLES, "Role", True, "role"),
        ResourceInfo(ROLEBINDINGS, "RoleBinding", True, "rolebinding"),
        ResourceInfo(CLUSTERROLES, "ClusterRole", False, "clusterrole"),
        ResourceInfo(CLUSTERROLEBINDINGS, "ClusterRoleBinding", False, "clusterrolebinding"),
        ResourceInfo(
            CRDS,
            "CustomResourceDefinition",
            False,
            "customresourcedefinition",
            ("crd", "crds"),
            ("api-extensions",),
            status_subresource=True,
        ),
    ]


def info_from_crd(crd: dict[str, Any]) -> list[ResourceInfo]:
    """The served versions a CRD declares."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    infos = []
    storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")), None)
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        infos.append(
            ResourceInfo(
                key=ResourceKey(spec["group"], version["name"], names["plural"]),
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in (version.get("subresources") or {}),
                selectable_fields=tuple(
                    f["jsonPath"].lstrip(".") for f in version.get("selectableFields") or ()
                ),
                crd_version=version,
                crd_name=crd["metadata"]["name"],
                # Every version shares the storage version's objects (conversion "None").
                storage=(
                    ResourceKey(spec["group"], storage, names["plural"])
                    if storage and storage != version["name"]
                    else None
                ),
            )
        )
    return infos
