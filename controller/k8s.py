"""The only module that talks to the Kubernetes API: one aiohttp session, kopf's credentials."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import ssl
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from controller import metrics
from controller.core import naming
from taskrun.api import GROUP, KIND, PLURAL, VERSION

log = logging.getLogger(__name__)

COMPONENT = "taskrun-controller"
USER_AGENT = "taskrun-controller/0.1"
# Retrying 429 / 5xx: a handful of tries, at most this long each, so a sick API server slows
# the controller down instead of turning it into a retry storm.
MAX_TRIES = 5
# pods/exec sub-protocols: v4 adds the JSON status on channel 3 (exit code).
EXEC_PROTOCOLS = ("v4.channel.k8s.io", "channel.k8s.io")
MAX_BACKOFF_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 30.0


class Credentials(Protocol):
    """What kopf's ConnectionInfo offers (kept structural so tests can pass their own)."""

    server: str
    ca_path: Any
    ca_data: Any
    insecure: bool | None
    certificate_path: Any
    certificate_data: Any
    private_key_path: Any
    private_key_data: Any

    def as_http_headers(self) -> dict[str, str]: ...


class ApiError(Exception):
    """A Kubernetes API error: HTTP status plus the metav1.Status reason and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class PodNameConflict(Exception):
    """The pod name is taken by a pod another owner controls."""


class Client:
    """Async Kubernetes API client for the controller's few calls."""

    def __init__(self, credentials: Credentials, *, max_tries: int = MAX_TRIES) -> None:
        self._server = credentials.server.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, **credentials.as_http_headers()}
        self._ssl = _ssl_context(credentials)
        self._max_tries = max_tries
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the session (keep-alive connections included)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
                connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl else False),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        """One API call with bounded retries on 429 / 5xx / connection errors."""
        session = self._ensure_session()
        headers = {"Content-Type": content_type} if body is not None else {}
        for attempt in range(1, self._max_tries + 1):
            started = time.monotonic()
            try:
                async with session.request(
                    method, self._server + path, params=params, json=body, headers=headers
                ) as response:
                    data = await response.read()
                    metrics.observe_api_request(
                        method, resource, response.status, time.monotonic() - started
                    )
                    if response.status < 400:
                        if raw:
                            return data
                        return await response.json(content_type=None) if data else None
                    error = _api_error(response.status, data)
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as err:
                metrics.observe_api_request(method, resource, "error", time.monotonic() - started)
                error = ApiError(0, "ConnectionError", str(err) or type(err).__name__)
                retry_after = None
            if not _retryable(error.status) or too_large(error) or attempt == self._max_tries:
                raise error
            delay = _backoff(attempt, retry_after)
            log.info("%s %s: %s; retry %d in %.2fs", method, path, error, attempt, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    # --- pods ------------------------------------------------------------------------------

    async def create_pod(self, namespace: str, pod: Mapping[str, Any], owner_uid: str) -> Any:
        """Create the pod; on 409 adopt it when it is ours (``naming.owns``), else conflict."""
        path = f"/api/v1/namespaces/{namespace}/pods"
        try:
            return await self.request("POST", path, resource="pods", body=pod)
        except ApiError as err:
            if err.status != 409:
                raise
        name = pod["metadata"]["name"]
        existing = await self.get_pod(namespace, name)
        if existing is None:
            # Deleted between our create and our read: a later reconcile creates it again.
            raise ApiError(409, "AlreadyExists", f"pod {name} exists but could not be read")
        if not naming.owns(existing, owner_uid):
            raise PodNameConflict(naming.conflict_message(existing, owner_uid))
        return existing

    async def get_pod(self, namespace: str, name: str) -> Any:
        """The pod, or None when it does not exist."""
        try:
            return await self.request(
                "GET", f"/api/v1/namespaces/{namespace}/pods/{name}", resource="pods"
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def list_pods(self, namespace: str, label_selector: str) -> list[Any]:
        """Pods in the namespace matching the selector."""
        data = await self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            resource="pods",
            params={"labelSelector": label_selector},
        )
        return list((data or {}).get("items") or [])

    async def delete_pod(
        self, namespace: str, name: str, uid: str | None, grace_seconds: int | None = None
    ) -> None:
        """Delete the pod if it is still the one we saw (uid precondition); gone is fine."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            body["preconditions"] = {"uid": uid}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            await self.request(
                "DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", resource="pods", body=body
            )
        except ApiError as err:
            if err.status not in (404, 409):
                raise

    async def read_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
    ) -> bytes:
        """The container's log (bytes), optionally its last lines and at most some bytes."""
        params: dict[str, Any] = {"container": container}
        if tail_lines is not None:
            params["tailLines"] = tail_lines
        if limit_bytes is not None:
            params["limitBytes"] = limit_bytes
        data: bytes = await self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            resource="pods/log",
            params=params,
            raw=True,
        )
        return data

    async def exec(self, namespace: str, pod: str, container: str, command: list[str]) -> bytes:
        """Run ``command`` in the container (pods/exec over WebSocket); returns its stdout.

        Raises ApiError when the command fails or the API refuses.
        """
        params = [("container", container), ("stdout", "true"), ("stderr", "true")]
        params += [("command", part) for part in command]
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"
        session = self._ensure_session()
        stdout, stderr = bytearray(), bytearray()
        error: dict[str, Any] | None = None
        started = time.monotonic()
        try:
            async with session.ws_connect(
                self._server + path,
                params=params,
                protocols=EXEC_PROTOCOLS,
                max_msg_size=0,
            ) as ws:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                        continue
                    channel, payload = message.data[0], message.data[1:]
                    if channel == 1:
                        stdout += payload
                    elif channel == 2:
                        stderr += payload
                    elif channel == 3 and payload:
                        error = json.loads(payload)
        except aiohttp.WSServerHandshakeError as err:
            metrics.observe_api_request("GET", "pods/exec", err.status, time.monotonic() - started)
            raise ApiError(err.status, "ExecFailed", err.message) from err
        except aiohttp.ClientConnectionError as err:
            raise ApiError(0, "ConnectionError", str(err)) from err
        metrics.observe_api_request("GET", "pods/exec", 101, time.monotonic() - started)
        if error is not None and error.get("status") != "Success":
            detail = stderr.decode("utf-8", "replace").strip() or error.get("message", "")
            raise ApiError(500, str(error.get("reason") or "ExecFailed"), str(detail))
        return bytes(stdout)

    async def list_pod_events(self, namespace: str, uid: str) -> list[Any]:
        """Events whose involvedObject is the pod with that uid."""
        data = await self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            resource="events",
            params={"fieldSelector": f"involvedObject.uid={uid}"},
        )
        return list((data or {}).get("items") or [])

    # --- TaskRuns --------------------------------------------------------------------------

    def _taskrun_path(self, namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{quote(name)}"

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> Any:
        """Merge-patch the TaskRun's status subresource; returns the updated TaskRun."""
        return await self.request(
            "PATCH",
            self._taskrun_path(namespace, name) + "/status",
            resource=f"{PLURAL}/status",
            body={"status": patch},
            content_type="application/merge-patch+json",
        )

    async def delete_taskrun(self, namespace: str, name: str, uid: str | None) -> None:
        """Delete the TaskRun if it is still the one we saw; gone is fine."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request(
                "DELETE", self._taskrun_path(namespace, name), resource=PLURAL, body=body
            )
        except ApiError as err:
            if err.status not in (404, 409):
                raise

    async def create_event(
        self, taskrun: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """Record a v1 Event on the TaskRun (best effort: events never block a reconcile)."""
        meta = taskrun.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": socket.gethostname(),
        }
        try:
            await self.request(
                "POST", f"/api/v1/namespaces/{namespace}/events", resource="events", body=event
            )
        except ApiError as err:
            log.warning(
                "event %s on %s/%s not recorded: %s", reason, namespace, meta.get("name"), err
            )

    async def server_version(self) -> tuple[int, int] | None:
        """(major, minor) of the API server, None when it does not say."""
        try:
            data = await self.request("GET", "/version", resource="version")
        except ApiError:
            return None
        try:
            major = int(str(data.get("major", "")).rstrip("+"))
            minor = int(str(data.get("minor", "")).rstrip("+"))
        except (AttributeError, ValueError):
            return None
        return major, minor


def _api_error(status: int, data: bytes) -> ApiError:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return ApiError(status, str(body.get("reason") or ""), str(body.get("message") or ""))
    return ApiError(status, "", data[:500].decode("utf-8", "replace"))


def too_large(err: ApiError) -> bool:
    """The API server (or etcd behind it, as a 500) refused a write as too large to store.

    Sending the same body again gets the same answer: never retried.
    """
    text = err.message.lower()
    return err.status == 413 or "request entity too large" in text or "request is too large" in text


def _retryable(status: int) -> bool:
    return status in (0, 429) or status >= 500


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_BACKOFF_SECONDS)
        except ValueError:
            pass
    base = min(0.1 * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    return float(base * (0.5 + random.random() / 2))


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | None:
    if not credentials.server.startswith("https"):
        return None
    context = ssl.create_default_context()
    if credentials.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if credentials.ca_path:
        context.load_verify_locations(cafile=os.fspath(credentials.ca_path))
    elif credentials.ca_data:
        data = credentials.ca_data
        context.load_verify_locations(cadata=data.decode() if isinstance(data, bytes) else data)
    cert = _as_file(credentials.certificate_path, credentials.certificate_data)
    key = _as_file(credentials.private_key_path, credentials.private_key_data)
    if cert:
        context.load_cert_chain(certfile=cert, keyfile=key)
    return context


def _as_file(path: Any, data: Any) -> str | None:
    if path:
        return os.fspath(path)
    if not data:
        return None
    # ssl loads client certificates from files only.
    with tempfile.NamedTemporaryFile(prefix="taskrun-", suffix=".pem", delete=False) as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())
    return handle.name
