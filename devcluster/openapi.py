"""Just enough OpenAPI v3 for kubectl: it learns here that the server validates fields.

kubectl (validate=strict) reads /openapi/v3 to check that PATCH accepts the
``fieldValidation`` query parameter; when it does, kubectl leaves validation to
the server, which is where devcluster validates custom resources.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devcluster.resources import ResourceInfo


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def index(infos: list[ResourceInfo]) -> dict[str, Any]:
    """The /openapi/v3 discovery document."""
    paths: dict[str, Any] = {}
    for gv in sorted({(i.key.group, i.key.version) for i in infos}):
        doc = group_version(infos, *gv)
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
        rel = _gv_path(*gv)
        paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={digest.upper()}"}
    return {"paths": paths}


def _schema_name(info: ResourceInfo) -> str:
    group = ".".join(reversed(info.key.group.split("."))) if info.key.group else "io.k8s.api.core"
    return f"{group}.{info.key.version}.{info.kind}"


def group_version(infos: list[ResourceInfo], group: str, version: str) -> dict[str, Any] | None:
    """An OpenAPI v3 document for one group/version."""
    selected = [i for i in infos if i.key.group == group and i.key.version == version]
    if not selected:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    params = [
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
    ]
    for info in selected:
        gvk = {"group": group, "version": version, "kind": info.kind}
        prefix = "/" + _gv_path(group, version)
        ns = "/namespaces/{namespace}" if info.namespaced else ""
        item = f"{prefix}{ns}/{info.key.plural}/{{name}}"
        collection = f"{prefix}{ns}/{info.key.plural}"
        ref = {"$ref": f"#/components/schemas/{_schema_name(info)}"}
        body = {"content": {"application/json": {"schema": ref}}}
        ok = {"200": body}

        def op(
            action: str, gvk: dict[str, str] = gvk, ok: dict[str, Any] = ok, **extra: Any
        ) -> dict[str, Any]:
            return {
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": ok,
                **extra,
            }

        paths[item] = {
            "get": op("get"),
            "put": op("put", requestBody=body),
            "patch": op("patch", requestBody=body),
            "delete": op("delete"),
        }
        paths[collection] = {"get": op("list"), "post": op("post", requestBody=body)}
        schema: dict[str, Any] = {"type": "object", "x-kubernetes-group-version-kind": [gvk]}
        crd_schema = ((info.crd_version or {}).get("schema") or {}).get("openAPIV3Schema")
        if crd_schema:
            schema = {**crd_schema, "x-kubernetes-group-version-kind": [gvk]}
        schemas[_schema_name(info)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (devcluster)", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
