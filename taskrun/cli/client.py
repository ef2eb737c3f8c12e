"""The only module of the plugin that talks to the Kubernetes API (standard library HTTP).

Blocking calls on purpose: a command does one thing at a time, and urllib keeps the plugin
free of any dependency the controller image does not already have.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from taskrun.api import GROUP, PLURAL, VERSION
from taskrun.cli.kubeconfig import Connection

Obj = dict[str, Any]

REQUEST_TIMEOUT_SECONDS = 30
# A watch asks the server to end it after this long; the client reconnects from the last
# version it saw. The socket gives up a little later on a silent connection.
WATCH_SECONDS = 300
USER_AGENT = "kubectl-taskrun"


class ApiError(Exception):
    """A Kubernetes API error: HTTP code, the Status reason and its message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


class Client:
    """TaskRuns, their pods, logs and events in one cluster."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- paths ---------------------------------------------------------------------------
    def taskruns_path(self, namespace: str | None) -> str:
        if namespace is None:
            return f"/apis/{GROUP}/{VERSION}/{PLURAL}"
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"

    # -- TaskRuns --------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> Obj:
        return self.request("GET", f"{self.taskruns_path(namespace)}/{name}")

    def list_taskruns(self, namespace: str | None, label_selector: str | None = None) -> Obj:
        query = {"labelSelector": label_selector} if label_selector else None
        return self.request("GET", self.taskruns_path(namespace), query=query)

    def create(self, namespace: str, body: Obj) -> Obj:
        return self.request("POST", self.taskruns_path(namespace), body=body)

    def patch(self, namespace: str, name: str, patch: Obj) -> Obj:
        return self.request(
            "PATCH",
            f"{self.taskruns_path(namespace)}/{name}",
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(self, namespace: str, name: str) -> Obj:
        return self.request("DELETE", f"{self.taskruns_path(namespace)}/{name}")

    def watch(self, namespace: str, name: str, resource_version: str) -> Iterator[Obj]:
        """Watch events of one TaskRun from ``resource_version`` until the server ends it."""
        query = {
            "watch": "true",
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        for line in self.stream(self.taskruns_path(namespace), query, WATCH_SECONDS + 30):
            if line.strip():
                yield json.loads(line)

    # -- pods, logs, events ----------------------------------------------------------------
    def get_pod(self, namespace: str, name: str) -> Obj:
        return self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")

    def log(
        self, namespace: str, pod: str, container: str, *, follow: bool = False
    ) -> Iterator[bytes]:
        """The container's log; with ``follow``, until the container ends."""
        query = {"container": container}
        if follow:
            query["follow"] = "true"
        # A followed log may be silent for long: no read timeout.
        yield from self.stream(
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query, None if follow else 60
        )

    def events(self, namespace: str, uid: str) -> list[Obj]:
        query = {"fieldSelector": f"involvedObject.uid={uid}"}
        return list(
            self.request("GET", f"/api/v1/namespaces/{namespace}/events", query=query).get("items")
            or []
        )

    # -- HTTP ------------------------------------------------------------------------------
    def _open(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: Obj | None,
        content_type: str,
        timeout: float | None,
    ) -> Any:
        url = self.conn.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self.conn.headers}
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=timeout, context=self.conn.ssl_context)
        except urllib.error.HTTPError as err:
            raise _api_error(err) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ApiError(
                0,
                "Unreachable",
                f"cannot reach the API server {self.conn.server} (context "
                f"{self.conn.context}): {reason}",
            ) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        with self._open(method, path, query, body, content_type, REQUEST_TIMEOUT_SECONDS) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def stream(self, path: str, query: dict[str, str], timeout: float | None) -> Iterator[bytes]:
        """The response body line by line, as the server sends it."""
        with self._open("GET", path, query, None, "", timeout) as resp:
            while True:
                line = resp.readline()
                if not line:
                    return
                yield line


def _api_error(err: urllib.error.HTTPError) -> ApiError:
    try:
        status = json.loads(err.read() or b"{}")
    except ValueError:
        status = {}
    message = status.get("message") or f"HTTP {err.code} {err.reason}"
    return ApiError(err.code, status.get("reason") or str(err.reason), message)
