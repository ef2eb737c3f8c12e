"""The only module that talks to the Kubernetes API: one aiohttp session, kopf's credentials."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import kopf
import yaml

from controller import metrics
from controller.core import naming
from controller.core.tails import READ_BYTES_FACTOR, LogTail, TailKeeper, tail_of
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
# An error answer is a metav1.Status of a few hundred bytes; more is not read.
MAX_ERROR_BODY_BYTES = 64 * 1024
# Body reads with a bound go in chunks of this size, so memory follows the bound.
READ_CHUNK_BYTES = 64 * 1024
# How long a cut exec stream may take to close before its connection is dropped.
EXEC_ABANDON_SECONDS = 0.2
# WebSocket frames of pods/exec: the API server sends its copy buffer (32 KiB) per frame.
MAX_EXEC_FRAME_BYTES = 1024 * 1024
# A tail whose last line alone is over the byte budget is read to that line's end, keeping
# only the budget; past this many bytes the line's end is given up on.
MAX_LAST_LINE_READ_BYTES = 64 * 1024 * 1024


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

    def __init__(
        self, status: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        # The Status body's details: which object a NotFound is about.
        self.details: Mapping[str, Any] = details or {}


class PodNameConflict(Exception):
    """The pod name is taken by a pod another owner controls."""


class Client:
    """Async Kubernetes API client for the controller's few calls."""

    def __init__(self, credentials: Credentials, *, max_tries: int = MAX_TRIES) -> None:
        self.credentials = credentials
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
        limit: int | None = None,
    ) -> Any:
        """One API call with bounded retries on 429 / 5xx / connection errors.

        ``limit`` (with ``raw``): read at most ``limit`` bytes of the body, then drop the
        connection, whatever the server sends.
        """
        session = self._ensure_session()
        headers = {"Content-Type": content_type} if body is not None else {}
        for attempt in range(1, self._max_tries + 1):
            started = time.monotonic()
            try:
                async with session.request(
                    method, self._server + path, params=params, json=body, headers=headers
                ) as response:
                    if response.status < 400 and raw and limit is not None:
                        data = await _read_at_most(response, limit)
                    elif response.status < 400:
                        data = await response.read()
                    else:
                        data = await _read_at_most(response, MAX_ERROR_BODY_BYTES)
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
        limit_bytes: int,
    ) -> tuple[bytes, bool]:
        """At most ``limit_bytes`` of the container's log (its last ``tail_lines`` lines).

        Returns the bytes and whether that was all of it. The server is asked for one byte
        more than the limit (limitBytes) and the read stops there whatever it sends, so
        memory stays within the limit however long the log is.
        """
        params: dict[str, Any] = {"container": container, "limitBytes": limit_bytes + 1}
        if tail_lines is not None:
            params["tailLines"] = tail_lines
        data: bytes = await self.request(
            "GET",
            self._log_path(namespace, pod),
            resource="pods/log",
            params=params,
            raw=True,
            limit=limit_bytes + 1,
        )
        return data[:limit_bytes], len(data) <= limit_bytes

    async def read_tail(
        self, namespace: str, pod: str, container: str, *, lines: int, max_bytes: int
    ) -> LogTail:
        """The log's last ``lines`` lines within ``max_bytes`` (controller/core/tails.py).

        The kubelet applies limitBytes from the start of the tailLines window, so one read
        of both gives the window's beginning when its lines are long. Read the window when it
        is small; otherwise find the most last lines that fit the budget (each read at most
        the budget); when not even the last line fits, stream that line keeping its end.
        """
        window, complete = await self.read_log(
            namespace,
            pod,
            container,
            tail_lines=lines + 1,
            limit_bytes=max_bytes * READ_BYTES_FACTOR,
        )
        if complete:
            return tail_of(window, lines, max_bytes)
        fits, best = 0, b""
        low, high = 1, lines
        while low <= high:
            middle = (low + high) // 2
            data, whole = await self.read_log(
                namespace, pod, container, tail_lines=middle, limit_bytes=max_bytes
            )
            if whole:
                fits, best = middle, data
                low = middle + 1
            else:
                high = middle - 1
        if fits:
            return LogTail(text=best.decode("utf-8", "replace"), truncated=True)
        return await self._last_line_end(namespace, pod, container, max_bytes)

    async def _last_line_end(
        self, namespace: str, pod: str, container: str, max_bytes: int
    ) -> LogTail:
        keeper = TailKeeper(max_bytes)
        session = self._ensure_session()
        params: dict[str, str | int] = {
            "container": container,
            "tailLines": 1,
            "limitBytes": MAX_LAST_LINE_READ_BYTES,
        }
        started = time.monotonic()
        try:
            async with session.get(
                self._server + self._log_path(namespace, pod), params=params
            ) as response:
                metrics.observe_api_request(
                    "GET", "pods/log", response.status, time.monotonic() - started
                )
                if response.status >= 400:
                    raise _api_error(
                        response.status, await _read_at_most(response, MAX_ERROR_BODY_BYTES)
                    )
                async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                    keeper.feed(chunk)
                    if keeper.seen >= MAX_LAST_LINE_READ_BYTES:
                        break
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as err:
            raise ApiError(0, "ConnectionError", str(err) or type(err).__name__) from err
        if keeper.seen >= MAX_LAST_LINE_READ_BYTES:
            # Its end was never read: say so rather than show a middle as the end.
            return LogTail(
                text=f"[the log's last line is longer than {MAX_LAST_LINE_READ_BYTES} bytes;"
                " its end was not read]\n",
                truncated=True,
            )
        return keeper.tail()

    @staticmethod
    def _log_path(namespace: str, pod: str) -> str:
        return f"/api/v1/namespaces/{namespace}/pods/{pod}/log"

    async def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: list[str],
        *,
        max_stdout: int = 64 * 1024,
    ) -> bytes:
        """Run ``command`` in the container (pods/exec over WebSocket); returns its stdout.

        Stdout past ``max_stdout`` bytes is not read: at ``max_stdout + 1`` bytes the stream
        is closed and those bytes are returned, so the caller sees that there was more and
        memory stays flat whatever the command prints. Raises ApiError when the command
        fails or the API refuses.
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
                max_msg_size=MAX_EXEC_FRAME_BYTES,
            ) as ws:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.ERROR:
                        raise ApiError(0, "ExecFailed", f"pods/exec stream: {ws.exception()}")
                    if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                        continue
                    channel, payload = message.data[0], message.data[1:]
                    if channel == 1:
                        stdout += payload[: max_stdout + 1 - len(stdout)]
                        if len(stdout) > max_stdout:
                            await _abandon(ws)
                            break
                    elif channel == 2:
                        stderr += payload[: MAX_ERROR_BODY_BYTES - len(stderr)]
                    elif channel == 3 and payload:
                        error = json.loads(payload)
        except aiohttp.WSServerHandshakeError as err:
            metrics.observe_api_request("GET", "pods/exec", err.status, time.monotonic() - started)
            raise ApiError(err.status, "ExecFailed", err.message) from err
        except aiohttp.ClientConnectionError as err:
            raise ApiError(0, "ConnectionError", str(err)) from err
        metrics.observe_api_request("GET", "pods/exec", 101, time.monotonic() - started)
        if len(stdout) > max_stdout:
            return bytes(stdout)
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
        details = body.get("details")
        return ApiError(
            status,
            str(body.get("reason") or ""),
            str(body.get("message") or ""),
            details if isinstance(details, dict) else None,
        )
    return ApiError(status, "", data[:500].decode("utf-8", "replace"))


def taskrun_gone(err: ApiError, name: str) -> bool:
    """The answer says that TaskRun ``name`` itself does not exist.

    Only a NotFound naming that object counts: a 404 for a CRD that is gone (no details,
    or another kind) says nothing of the run, and RBAC answers 403, not 404.
    """
    details = err.details
    return (
        err.status == 404
        and err.reason == "NotFound"
        and details.get("name") == name
        and details.get("kind") == PLURAL
        and details.get("group", GROUP) == GROUP
    )


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


async def _abandon(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Close a stream we stop reading: a moment for the server to answer the close frame,
    then the connection is dropped (closing waits for that answer, reading and discarding
    whatever still comes, for up to 10 s)."""
    # A timeout cancels close() midway, and aiohttp then drops the connection.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(ws.close(), timeout=EXEC_ABANDON_SECONDS)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the rest is left unread (the connection is
    closed with the response)."""
    data = bytearray()
    while len(data) < limit:
        chunk = await response.content.read(min(READ_CHUNK_BYTES, limit - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) >= limit:
        response.close()
    return bytes(data)


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | None:
    """kopf's SSL context for these credentials (CA, client certificate, insecure).

    kopf decodes the kubeconfig's base64 ``*-data`` fields and removes the temporary files
    ``ssl`` needs for a client key as soon as the key is loaded.
    """
    if not credentials.server.startswith("https"):
        return None
    make = getattr(credentials, "as_ssl_context", None)
    if make is None:
        make = kopf.ConnectionInfo(
            server=credentials.server,
            ca_path=credentials.ca_path,
            ca_data=credentials.ca_data,
            insecure=credentials.insecure,
            certificate_path=credentials.certificate_path,
            certificate_data=credentials.certificate_data,
            private_key_path=credentials.private_key_path,
            private_key_data=credentials.private_key_data,
        ).as_ssl_context
    context: ssl.SSLContext = make()
    return context


# --- login: the connection settings of a kubeconfig, as kubectl reads them --------------------

EXEC_CREDENTIAL_TIMEOUT_SECONDS = 60.0
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class KubeconfigError(Exception):
    """The kubeconfig cannot be used; the message names the file and the field."""


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Credentials for the controller: in-cluster, else the kubeconfig (``$KUBECONFIG``).

    kopf reads the kubeconfig (contexts, clusters, users; embedded or file certificates,
    tokens, insecure-skip-tls-verify). kubectl also reads ``tokenFile``, runs ``exec``
    credential plugins and resolves relative paths against the kubeconfig's directory:
    those are added here.
    """
    info = kopf.login_with_service_account(**kwargs)
    if info is not None:
        return info
    try:
        info = kopf.login_with_kubeconfig(**kwargs)
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as err:
        raise KubeconfigError(f"KUBECONFIG={os.environ.get('KUBECONFIG', '')}: {err}") from err
    if info is None:
        return None
    cluster, user, origin = _current_stanzas(_kubeconfig_paths())
    changes: dict[str, Any] = {}
    for field, stanza, key in (
        ("ca_path", cluster, "certificate-authority"),
        ("certificate_path", user, "client-certificate"),
        ("private_key_path", user, "client-key"),
    ):
        if stanza.get(key):
            changes[field] = str(origin[id(stanza)] / os.path.expanduser(str(stanza[key])))
    if not user.get("token") and user.get("tokenFile"):
        path = origin[id(user)] / os.path.expanduser(str(user["tokenFile"]))
        try:
            changes["token"] = path.read_text().strip()
        except OSError as err:
            raise KubeconfigError(f"users[].user.tokenFile {path}: {err}") from err
    if user.get("exec"):
        changes.update(_exec_credential(user["exec"], cluster, origin[id(user)]))
    return dataclasses.replace(info, **changes) if changes else info


def check_kubeconfig() -> None:
    """Raise KubeconfigError unless the kubeconfig can be read and names a current
    context with its cluster and user (what kopf's login needs; no plugin is run)."""
    paths = _kubeconfig_paths()
    for path in paths:
        if not path.is_file():
            raise KubeconfigError(f"{path}: no such file")
    try:
        config = [yaml.safe_load(path.read_text()) or {} for path in paths]
        if not all(isinstance(c, dict) for c in config):
            raise KubeconfigError("not a kubeconfig (a YAML mapping)")
        current = next((c["current-context"] for c in config if c.get("current-context")), None)
        if current is None:
            raise KubeconfigError("no current-context")
        contexts = {
            i["name"]: i.get("context") or {} for c in config for i in c.get("contexts") or []
        }
        if current not in contexts:
            raise KubeconfigError(f"current-context {current!r} is not among its contexts")
        cluster, _, _ = _current_stanzas(paths)
        if not cluster.get("server"):
            raise KubeconfigError(f"context {current!r} names no cluster with a server")
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as err:
        raise KubeconfigError(str(err)) from err


def _kubeconfig_paths() -> list[Path]:
    value = os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [Path(os.path.expanduser(p.strip())) for p in value.split(os.pathsep) if p.strip()]


def _current_stanzas(
    paths: list[Path],
) -> tuple[dict[str, Any], dict[str, Any], dict[int, Path]]:
    """The current context's cluster and user, merged as kopf and kubectl merge them (the
    first file to name an entry wins), and the directory of the file each came from."""
    current: str | None = None
    contexts: dict[str, Any] = {}
    clusters: dict[str, Any] = {}
    users: dict[str, Any] = {}
    origin: dict[int, Path] = {}
    for path in paths:
        config = yaml.safe_load(path.read_text()) or {}
        current = current or config.get("current-context")
        for key, table in (("contexts", contexts), ("clusters", clusters), ("users", users)):
            for item in config.get(key) or []:
                body = item.get(key[:-1]) or {}
                if item["name"] not in table:
                    table[item["name"]] = body
                    origin[id(body)] = path.parent
    context = contexts[current] if current else {}
    cluster = clusters.get(str(context.get("cluster")), {})
    return cluster, users.get(str(context.get("user")), {}), origin


def _exec_credential(spec: Mapping[str, Any], cluster: Mapping[str, Any], base: Path) -> dict:
    """Run a client-go exec credential plugin; its token or client certificate."""
    command = str(spec.get("command") or "")
    if os.sep in command and not os.path.isabs(command):
        command = str(base / command)  # kubectl: relative to the kubeconfig's directory
    api_version = spec.get("apiVersion") or "client.authentication.k8s.io/v1"
    request: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    if spec.get("provideClusterInfo"):
        request["spec"]["cluster"] = {
            "server": cluster.get("server"),
            "certificate-authority-data": cluster.get("certificate-authority-data"),
            "insecure-skip-tls-verify": cluster.get("insecure-skip-tls-verify", False),
        }
    env = {**os.environ, "KUBERNETES_EXEC_INFO": json.dumps(request)}
    env.update({str(e["name"]): str(e["value"]) for e in spec.get("env") or []})
    argv = [command, *[str(a) for a in spec.get("args") or []]]
    try:
        done = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            timeout=EXEC_CREDENTIAL_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise KubeconfigError(f"users[].user.exec.command {command!r}: {err}") from err
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()[:500]
        raise KubeconfigError(
            f"users[].user.exec.command {command!r} exited {done.returncode}: {detail}"
        )
    try:
        status = json.loads(done.stdout)["status"]
    except (ValueError, KeyError, TypeError) as err:
        raise KubeconfigError(
            f"users[].user.exec.command {command!r} printed no ExecCredential status: {err}"
        ) from err
    changes: dict[str, Any] = {}
    if status.get("token"):
        changes["token"] = status["token"]
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        changes.update(
            certificate_path=None,
            certificate_data=status["clientCertificateData"],
            private_key_path=None,
            private_key_data=status["clientKeyData"],
        )
    if status.get("expirationTimestamp"):
        # kopf logs in again once the credential expires.
        changes["expiration"] = datetime.fromisoformat(
            str(status["expirationTimestamp"]).replace("Z", "+00:00")
        )
    return changes
