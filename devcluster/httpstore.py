"""The kubelet's view of the API (the Store protocol of devcluster/kubelet.py) over HTTP.

The node agent (devcluster/node.py) drives the simulated kubelet through this class
against any API server: devcluster's own, or a real kube-apiserver. It reads a
kubeconfig's server, certificate authority, client certificate and token, and speaks
plain JSON REST: get, list, create, merge patch (the status subresource too),
delete with DeleteOptions, the pods/binding subresource and watch.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devcluster.errors import ApiError
from devcluster.resources import PODS, ResourceKey

_PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


@dataclass
class Credentials:
    """What a kubeconfig's current context says about reaching its cluster."""

    server: str
    ssl: ssl.SSLContext | bool
    token: str | None = None


def _material(entry: dict[str, Any], key: str, scratch: Path) -> str | None:
    """A PEM file path for ``key`` (``key-data`` is written to a private scratch file)."""
    data = entry.get(f"{key}-data")
    if data:
        target = scratch / key
        target.write_bytes(base64.b64decode(data))
        target.chmod(0o600)
        return str(target)
    path = entry.get(key)
    return str(path) if path else None


def load_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> Credentials:
    """Credentials of the kubeconfig's current (or named) context."""
    config_path = Path(path)
    config = yaml.safe_load(config_path.read_text()) or {}

    def named(section: str, name: str) -> dict[str, Any]:
        for item in config.get(section) or []:
            if item.get("name") == name:
                return dict(item.get(section[:-1]) or {})
        raise ValueError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

    ctx = named("contexts", context or config.get("current-context") or "")
    cluster = named("clusters", ctx.get("cluster") or "")
    user = named("users", ctx.get("user") or "") if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ValueError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    if not server.startswith("https://"):
        return Credentials(server, False, token)
    # Relative file paths in a kubeconfig are relative to the kubeconfig itself.
    for entry in (cluster, user):
        for key in ("certificate-authority", "client-certificate", "client-key"):
            if entry.get(key) and not os.path.isabs(entry[key]):
                entry[key] = str(config_path.parent / entry[key])
    with tempfile.TemporaryDirectory(prefix="node-agent-") as scratch:
        ca = _material(cluster, "certificate-authority", Path(scratch))
        context_ssl = ssl.create_default_context(cafile=ca)
        if cluster.get("insecure-skip-tls-verify"):
            context_ssl.check_hostname = False
            context_ssl.verify_mode = ssl.CERT_NONE
        cert = _material(user, "client-certificate", Path(scratch))
        key_file = _material(user, "client-key", Path(scratch))
        if cert:
            context_ssl.load_cert_chain(cert, key_file)
    return Credentials(server, context_ssl, token)


def _api_error(code: int, body: bytes) -> ApiError:
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return ApiError(
            int(status.get("code") or code),
            str(status.get("message") or ""),
            reason=status.get("reason"),
            details=status.get("details"),
        )
    return ApiError(code, body.decode("utf-8", "replace").strip() or f"HTTP {code}")


class HttpStore:
    """The Store protocol of the kubelet, served by an API server over HTTP(S)."""

    def __init__(self, credentials: Credentials, *, user_agent: str = "devcluster-node") -> None:
        self.credentials = credentials
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], context: str | None = None) -> HttpStore:
        return cls(load_kubeconfig(path, context))

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(ssl=self.credentials.ssl, limit=32),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _url(self, key: ResourceKey, namespace: str | None, name: str = "", sub: str = "") -> str:
        base = f"/api/{key.version}" if not key.group else f"/apis/{key.group}/{key.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        path = f"{base}/{key.plural}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")
        return self.credentials.server + path

    async def _call(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else None
        async with self.session.request(
            method, url, data=data, params=params, headers=headers
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                raise _api_error(response.status, raw)
            return json.loads(raw) if raw else None

    # -- the Store protocol ---------------------------------------------------------------

    async def get(self, key: ResourceKey, namespace: str | None, name: str) -> dict[str, Any]:
        return dict(await self._call("GET", self._url(key, namespace, name)))

    async def list_versioned(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Matching objects and the list's resourceVersion, to watch from."""
        params = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        body = await self._call("GET", self._url(key, namespace), params=params)
        kind = str(body.get("kind") or "").removesuffix("List")
        items = [dict(item) for item in body.get("items") or []]
        for item in items:
            # A list's items carry no apiVersion and kind; the kubelet's copies should.
            item.setdefault("apiVersion", body.get("apiVersion"))
            item.setdefault("kind", kind)
        return items, str((body.get("metadata") or {}).get("resourceVersion") or "")

    async def list(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        return (await self.list_versioned(key, namespace, label_selector, field_selector))[0]

    async def create(
        self, key: ResourceKey, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        return dict(await self._call("POST", self._url(key, namespace), body=obj))

    async def patch(
        self,
        key: ResourceKey,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return dict(
            await self._call(
                "PATCH",
                self._url(key, namespace, name, subresource or ""),
                body=patch,
                content_type=_PATCH_TYPES.get(patch_type, patch_type),
            )
        )

    async def delete(
        self,
        key: ResourceKey,
        namespace: str | None,
        name: str,
        grace_period_seconds: int | None = None,
        *,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        result = await self._call("DELETE", self._url(key, namespace, name), body=options)
        return result if isinstance(result, dict) and result.get("kind") != "Status" else None

    async def bind(self, namespace: str, name: str, node_name: str) -> Any:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        return await self._call("POST", self._url(PODS, namespace, name, "binding"), body=binding)

    async def watch_events(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(type, object) pairs until the server ends the watch; ApiError 410 when the
        version is too old (as a status code or as an ERROR event)."""
        params = {"watch": "1", "allowWatchBookmarks": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        async with self.session.get(self._url(key, namespace), params=params) as response:
            if response.status >= 400:
                raise _api_error(response.status, await response.read())
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise _api_error(int(obj.get("code") or 500), json.dumps(obj).encode())
                yield str(kind), obj

    def watch(
        self, key: ResourceKey, namespace: str | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        return self.watch_events(key, namespace)
