"""API discovery documents: /api, /apis and the per group-version resource lists."""

from __future__ import annotations

import re
from typing import Any

from devcluster.resources import PODS, ResourceInfo

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha > other, higher numbers first."""
    m = _VERSION.match(version)
    if not m:
        return (0, 0, 0, version)
    rank = {"": 3, "beta": 2, "alpha": 1}[m.group(2) or ""]
    return (rank, int(m.group(1)), int(m.group(3) or 0), "")


def group_versions(infos: list[ResourceInfo]) -> dict[str, list[str]]:
    """Group name -> served versions, preferred first ("" is the core group)."""
    groups: dict[str, list[str]] = {}
    for info in infos:
        versions = groups.setdefault(info.key.group, [])
        if info.key.version not in versions:
            versions.append(info.key.version)
    for versions in groups.values():
        versions.sort(key=version_priority, reverse=True)
    return groups


def _resource_entries(info: ResourceInfo) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": info.key.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": info.verbs,
    }
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    entries = [main]
    if info.status_subresource:
        entries.append(
            {
                "name": f"{info.key.plural}/status",
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if info.key == PODS:
        entries.append(
            {
                "name": "pods/log",
                "singularName": "",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["get"],
            }
        )
        entries.append(
            {
                "name": "pods/binding",
                "singularName": "",
                "namespaced": True,
                "kind": "Binding",
                "verbs": ["create"],
            }
        )
    return entries


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(infos: list[ResourceInfo]) -> dict[str, Any]:
    groups = group_versions(infos)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in groups.items() if name],
    }


def api_group(infos: list[ResourceInfo], group: str) -> dict[str, Any] | None:
    versions = group_versions(infos).get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def resource_list(infos: list[ResourceInfo], group: str, version: str) -> dict[str, Any] | None:
    selected = [i for i in infos if i.key.group == group and i.key.version == version]
    if not selected:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for info in selected for entry in _resource_entries(info)],
    }


def aggregated(infos: list[ResourceInfo], *, core: bool) -> dict[str, Any]:
    """The apidiscovery.k8s.io/v2 APIGroupDiscoveryList for /api (core) or /apis."""
    items = []
    for name, versions in group_versions(infos).items():
        if bool(name) == core:
            continue
        version_entries = []
        for v in versions:
            resources = []
            for info in infos:
                if info.key.group != name or info.key.version != v:
                    continue
                entry: dict[str, Any] = {
                    "resource": info.key.plural,
                    "responseKind": {"group": name, "version": v, "kind": info.kind},
                    "scope": "Namespaced" if info.namespaced else "Cluster",
                    "singularResource": info.singular,
                    "verbs": info.verbs,
                }
                if info.short_names:
                    entry["shortNames"] = list(info.short_names)
                if info.categories:
                    entry["categories"] = list(info.categories)
                subs = []
                if info.status_subresource:
                    subs.append(
                        {
                            "subresource": "status",
                            "responseKind": {"group": name, "version": v, "kind": info.kind},
                            "verbs": ["get", "patch", "update"],
                        }
                    )
                if info.key == PODS:
                    subs.append(
                        {
                            "subresource": "log",
                            "responseKind": {"group": "", "version": "", "kind": ""},
                            "verbs": ["get"],
                        }
                    )
                    subs.append(
                        {
                            "subresource": "binding",
                            "responseKind": {"group": "", "version": "v1", "kind": "Binding"},
                            "verbs": ["create"],
                        }
                    )
                if subs:
                    entry["subresources"] = subs
                resources.append(entry)
            version_entries.append({"version": v, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": name}, "versions": version_entries})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
