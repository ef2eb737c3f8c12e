"""A small synchronous Kubernetes client for tests: any API server a kubeconfig reaches.

Resources are named as kubectl names them (``pods``, ``taskruns``,
``roles.rbac.authorization.k8s.io``) and resolved through discovery, so one client serves
devcluster, the real control plane and any cluster a user points at.
"""

from __future__ import annotations

import builtins
import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testcluster.kubeconfig import Endpoint

# Not "taskrun...": tests count the controller's requests by that user-agent prefix.
USER_AGENT = "testcluster/0.1"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


class ApiError(Exception):
    """An API answer outside 2xx: HTTP code, the Status reason and message."""

    def __init__(self, code: int, reason: str, message: str, body: Any = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.body = body


@dataclass(frozen=True)
class Resource:
    """One served resource, as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


class Kube:
    """Create, read, update, patch, delete and watch any resource over HTTP(S)."""

    def __init__(self, endpoint: Endpoint, *, user_agent: str = USER_AGENT) -> None:
        self.endpoint = endpoint
        parsed = urllib.parse.urlsplit(endpoint.server)
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if self._https else 80)
        self._prefix = parsed.path.rstrip("/")
        self._headers = {"User-Agent": user_agent, **endpoint.headers}
        self._local = threading.local()
        self._resources: dict[str, Resource] = {}
        self._kinds: dict[tuple[str, str], Resource] = {}

    # -- HTTP ---------------------------------------------------------------------------

    def _connection(self, timeout: float | None = 30.0) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self.endpoint.ssl_context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        url: str,
        data: bytes | None,
        headers: dict[str, str],
    ) -> http.client.HTTPResponse:
        conn.request(method, url, body=data, headers=headers)
        return conn.getresponse()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        """One request; the decoded JSON answer (``raw``: the text). Raises ApiError."""
        url = self._url(path, query)
        data = None
        headers = dict(self._headers)
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        conn = getattr(self._local, "conn", None)
        for attempt in (1, 2):
            if conn is None:
                conn = self._local.conn = self._connection()
            try:
                response = self._send(conn, method, url, data, headers)
                payload = response.read()
                break
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
                # kube-apiserver closes a keep-alive connection idle for 90 s; over TLS the
                # next write meets the close as an EOF.
                ssl.SSLEOFError,
            ):
                # A keep-alive connection the server closed meanwhile: once more on a new one.
                conn.close()
                conn = self._local.conn = None
                if attempt == 2:
                    raise
            except BaseException:
                # Never leave a half-used connection for the next request ("Request-sent").
                conn.close()
                self._local.conn = None
                raise
        text = payload.decode("utf-8", "replace")
        if response.status >= 300:
            raise _error(response.status, text)
        if raw:
            return text
        return json.loads(text) if text else None

    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        url = self._prefix + path
        if query:
            pairs = {k: _q(v) for k, v in query.items() if v is not None}
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        return url

    # -- discovery ----------------------------------------------------------------------

    def resource(self, name: str) -> Resource:
        """``pods``, ``taskruns``, ``taskruns.taskrun.dev``, ``Pod``: the served resource."""
        for fresh in (False, True):
            if fresh or not self._resources:
                self._discover()
            found = self._resources.get(name) or self._resources.get(name.lower())
            if found:
                return found
        raise ApiError(404, "NotFound", f"the server serves no resource named {name!r}")

    def resource_for(self, api_version: str, kind: str) -> Resource:
        for fresh in (False, True):
            if fresh or not self._kinds:
                self._discover()
            found = self._kinds.get((api_version, kind))
            if found:
                return found
        raise ApiError(404, "NotFound", f'no matches for kind "{kind}" in "{api_version}"')

    def forget_discovery(self) -> None:
        """Drop the cached discovery (after a CRD is installed or removed)."""
        self._resources.clear()
        self._kinds.clear()

    def _discover(self) -> None:
        versions = [("", "v1")]
        for group in self.request("GET", "/apis").get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("version")
            for version in group.get("versions") or []:
                if version["version"] == preferred:
                    versions.append((group["name"], preferred))
        resources: dict[str, Resource] = {}
        kinds: dict[tuple[str, str], Resource] = {}
        for group, version in versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = self.request("GET", path)
            except ApiError:
                continue  # an aggregated API that is down: not ours
            for item in listing.get("resources") or []:
                if "/" in item["name"]:
                    continue
                res = Resource(group, version, item["name"], item["kind"], item["namespaced"])
                kinds[(res.api_version, res.kind)] = res
                names = [res.plural, f"{res.plural}.{group}" if group else res.plural, res.kind]
                names += [item.get("singularName") or "", *(item.get("shortNames") or [])]
                for alias in names:
                    # The core group wins a bare name (events: v1, not events.k8s.io).
                    if alias and alias not in resources:
                        resources[alias] = res
        self._resources, self._kinds = resources, kinds

    # -- verbs --------------------------------------------------------------------------

    def create(self, resource: str, namespace: str | None, body: dict[str, Any]) -> Any:
        res = self.resource(resource)
        return self.request("POST", res.path(namespace), body=body)

    def get(self, resource: str, namespace: str | None, name: str, sub: str = "") -> Any:
        return self.request("GET", self.resource(resource).path(namespace, name, sub))

    def get_or_none(self, resource: str, namespace: str | None, name: str) -> Any:
        """The object, or None when it does not exist."""
        try:
            return self.get(resource, namespace, name)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector, "fieldSelector": field_selector}
        answer = self.request("GET", self.resource(resource).path(namespace), query=query)
        return list(answer.get("items") or [])

    def replace(
        self, resource: str, namespace: str | None, name: str, body: dict[str, Any], sub: str = ""
    ) -> Any:
        return self.request("PUT", self.resource(resource).path(namespace, name, sub), body=body)

    def patch(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        type: str = "merge",
        sub: str = "",
        field_manager: str | None = None,
    ) -> Any:
        path = self.resource(resource).path(namespace, name, sub)
        query = {"fieldManager": field_manager}
        body = yaml.safe_dump(patch).encode() if type == "apply" else patch
        return self.request("PATCH", path, query=query, body=body, content_type=PATCH_TYPES[type])

    def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        grace_period: int | None = None,
        uid: str | None = None,
        missing_ok: bool = False,
    ) -> Any:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            return self.request(
                "DELETE", self.resource(resource).path(namespace, name), body=options
            )
        except ApiError as err:
            if missing_ok and err.code == 404:
                return None
            raise

    def logs(self, namespace: str, pod: str, container: str | None = None, **params: Any) -> str:
        """pods/log as text (tailLines=, limitBytes=, previous=, timestamps=)."""
        query = {"container": container, **params}
        path = self.resource("pods").path(namespace, pod, "log")
        return str(self.request("GET", path, query=query, raw=True))

    def watch(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        timeout: float = 30.0,
    ) -> Iterator[dict[str, Any]]:
        """Watch events ({type, object}) until ``timeout`` seconds pass or the stream ends."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "timeoutSeconds": max(1, int(timeout)),
            "allowWatchBookmarks": "true",
        }
        url = self._url(self.resource(resource).path(namespace), query)
        conn = self._connection(timeout=timeout + 5)
        try:
            response = self._send(conn, "GET", url, None, dict(self._headers))
            if response.status >= 300:
                raise _error(response.status, response.read().decode("utf-8", "replace"))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    # -- convenience --------------------------------------------------------------------

    def apply(self, obj: dict[str, Any]) -> Any:
        """Create the object, or replace it when it exists (kubectl apply without the diff)."""
        res = self.resource_for(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or (self.endpoint.namespace if res.namespaced else None)
        try:
            return self.request("POST", res.path(namespace), body=obj)
        except ApiError as err:
            if err.code != 409:
                raise
        current = self.request("GET", res.path(namespace, meta["name"]))
        body = {
            **obj,
            "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        return self.request("PUT", res.path(namespace, meta["name"]), body=body)

    def apply_file(self, path: str | Path) -> builtins.list[Any]:
        """Apply every document of a YAML file; CRDs are waited for until they are served."""
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
        out: builtins.list[Any] = []
        for doc in docs:
            for item in doc.get("items") or [] if doc.get("kind") == "List" else [doc]:
                out.append(self.apply(item))
                if item["kind"] == "CustomResourceDefinition":
                    self.wait_established(item["metadata"]["name"])
        return out

    def wait_established(self, crd: str, timeout: float = 30.0) -> None:
        """Until the CRD is Established and its resource is in discovery."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get("customresourcedefinitions", None, crd)
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                self.forget_discovery()
                try:
                    self.resource(crd)
                    return
                except ApiError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {crd} not served after {timeout} s: {conditions}")
            time.sleep(0.1)


def _q(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error(code: int, text: str) -> ApiError:
    try:
        body = json.loads(text)
    except ValueError:
        return ApiError(code, "", text.strip())
    if not isinstance(body, dict):
        return ApiError(code, "", text.strip())
    return ApiError(code, str(body.get("reason") or ""), str(body.get("message") or ""), body)
