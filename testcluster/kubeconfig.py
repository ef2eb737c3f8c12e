"""A kubeconfig's current context as what an HTTP client needs: URL, TLS context, headers."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Endpoint:
    """Where the API server is and how to authenticate to it."""

    server: str  # https://127.0.0.1:6443 or http://...
    ssl_context: ssl.SSLContext | None = None  # None for plain HTTP
    headers: dict[str, str] = field(default_factory=dict)  # Authorization: Bearer ...
    namespace: str = "default"


def load(path: str | os.PathLike[str], context: str | None = None) -> Endpoint:
    """The endpoint of ``context`` (default: current-context) in the kubeconfig at ``path``.

    Supports what kind, kubeadm and our launchers write: client certificates and CA as files
    or inline data, bearer tokens and token files, insecure-skip-tls-verify. Exec plugins
    and auth providers are not supported (they name the context in the error).
    """
    base = Path(path).resolve().parent
    config = yaml.safe_load(Path(path).read_text()) or {}
    name = context or config.get("current-context")
    ctx = _named(config, "contexts", name, "context")
    cluster = _named(config, "clusters", ctx.get("cluster"), "cluster")
    user = _named(config, "users", ctx.get("user"), "user") if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise ValueError(f"kubeconfig {path}: user of context {name!r} needs an exec plugin")
    server = str(cluster["server"]).rstrip("/")
    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("username"):
        basic = f"{user['username']}:{user.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
    tls = None
    if server.startswith("https://"):
        # A kubeconfig's CA is the only one trusted (as kubectl does), not the system's.
        own_ca = cluster.get("certificate-authority-data") or cluster.get("certificate-authority")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if own_ca else ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            tls.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        elif cluster.get("certificate-authority"):
            tls.load_verify_locations(cafile=str(base / cluster["certificate-authority"]))
        temporary: list[str] = []
        cert = _file(base, user, "client-certificate", temporary)
        key = _file(base, user, "client-key", temporary)
        try:
            if cert:
                tls.load_cert_chain(certfile=cert, keyfile=key)
        finally:
            for name in temporary:
                os.unlink(name)
    return Endpoint(server, tls, headers, ctx.get("namespace") or "default")


def _named(config: dict[str, Any], section: str, name: Any, inner: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(inner) or {})
    raise ValueError(f"kubeconfig has no {section[:-1]} named {name!r}")


def _file(base: Path, user: dict[str, Any], key: str, temporary: list[str]) -> str | None:
    """A path for a certificate given as a path or as ``<key>-data``: ssl reads files only."""
    if user.get(key):
        return str(base / user[key])
    data = user.get(f"{key}-data")
    if not data:
        return None
    with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as fh:
        fh.write(base64.b64decode(data))
    temporary.append(fh.name)
    return fh.name
