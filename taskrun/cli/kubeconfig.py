"""Where the API server is and who we are: kubeconfig and in-cluster rules, as kubectl reads them.

Precedence (client-go's): ``--kubeconfig`` (one file, must exist), else every file of
``KUBECONFIG`` (``:``-separated, missing ones skipped, the first file to define a name
wins), else ``~/.kube/config``; when none of those exist and the process runs in a pod,
the in-cluster service account. ``--context`` picks a context, ``-n`` overrides its
namespace.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    """The kubeconfig cannot be used; the message says which file, context or field."""


@dataclass
class Connection:
    """Enough to talk to one API server as one user."""

    server: str
    namespace: str
    context: str
    ssl_context: ssl.SSLContext | None = None
    headers: dict[str, str] = field(default_factory=dict)


def load(
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """The connection kubectl would use with these flags and this environment."""
    env = os.environ if env is None else env
    if kubeconfig:
        if not Path(kubeconfig).is_file():
            raise ConfigError(f"--kubeconfig {kubeconfig}: no such file")
        paths = [Path(kubeconfig)]
    elif env.get("KUBECONFIG"):
        paths = [Path(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    else:
        paths = [Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"]
    existing = [p for p in paths if p.is_file()]
    if not existing:
        if env.get("KUBERNETES_SERVICE_HOST") and not context:
            return in_cluster(env, namespace)
        raise ConfigError(
            f"no kubeconfig found (looked at {', '.join(str(p) for p in paths)}) and not "
            "running in a pod: pass --kubeconfig or set KUBECONFIG"
        )
    return from_config(merge(existing), context, namespace)


def merge(paths: list[Path]) -> dict[str, Any]:
    """kubectl's merge: for each named cluster, user and context the first file wins."""
    import yaml  # here, not at the top: `kubectl taskrun --help` reads no kubeconfig

    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"kubeconfig {path}: {err}") from err
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {path}: not a mapping")
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in doc.get(section) or []:
                name = item.get("name")
                if name and name not in merged[section]:
                    merged[section][name] = (dict(item.get(inner) or {}), path.parent)
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    return merged


def from_config(merged: dict[str, Any], context: str | None, namespace: str | None) -> Connection:
    """A connection from a merged kubeconfig (see ``merge``)."""
    name = context or merged["current-context"]
    if not name:
        raise ConfigError("the kubeconfig has no current-context: pass --context")
    if name not in merged["contexts"]:
        known = ", ".join(sorted(merged["contexts"])) or "none"
        raise ConfigError(f'context "{name}" is not in the kubeconfig (contexts: {known})')
    ctx, _ = merged["contexts"][name]
    cluster_name = ctx.get("cluster")
    if cluster_name not in merged["clusters"]:
        raise ConfigError(f'context "{name}": cluster "{cluster_name}" is not in the kubeconfig')
    cluster, cluster_dir = merged["clusters"][cluster_name]
    user, user_dir = merged["users"].get(ctx.get("user"), ({}, cluster_dir))
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f'cluster "{cluster_name}" has no server')
    conn = Connection(
        server=server, namespace=namespace or ctx.get("namespace") or "default", context=name
    )
    if server.startswith("https://"):
        conn.ssl_context = _ssl_context(cluster, cluster_dir)
    _authenticate(conn, user, user_dir, name)
    return conn


def in_cluster(env: Mapping[str, str], namespace: str | None) -> Connection:
    """The pod's service account, as rest.InClusterConfig reads it."""
    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    token_file = SERVICE_ACCOUNT_DIR / "token"
    try:
        token = token_file.read_text().strip()
    except OSError as err:
        raise ConfigError(f"in-cluster: cannot read {token_file}: {err}") from err
    ns_file = SERVICE_ACCOUNT_DIR / "namespace"
    default_ns = ns_file.read_text().strip() if ns_file.is_file() else "default"
    ctx = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT_DIR / "ca.crt"))
    return Connection(
        server=f"https://{host}:{port}",
        namespace=namespace or default_ns,
        context="in-cluster",
        ssl_context=ctx,
        headers={"Authorization": f"Bearer {token}"},
    )


def _path(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _data_file(data: str, what: str) -> str:
    """ssl wants files: write base64 kubeconfig data to a private temp file."""
    try:
        raw = base64.b64decode(data)
    except ValueError as err:
        raise ConfigError(f"{what} is not valid base64: {err}") from err
    fd, name = tempfile.mkstemp(prefix="kubectl-taskrun-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    return name


def _ssl_context(cluster: Mapping[str, Any], base: Path) -> ssl.SSLContext:
    if cluster.get("insecure-skip-tls-verify"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if cluster.get("certificate-authority-data"):
        pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
        return ssl.create_default_context(cadata=pem)
    if cluster.get("certificate-authority"):
        return ssl.create_default_context(cafile=_path(cluster["certificate-authority"], base))
    return ssl.create_default_context()


def _authenticate(conn: Connection, user: Mapping[str, Any], base: Path, context: str) -> None:
    cert = user.get("client-certificate-data")
    key = user.get("client-key-data")
    cert_file = _data_file(cert, "client-certificate-data") if cert else None
    key_file = _data_file(key, "client-key-data") if key else None
    if user.get("client-certificate"):
        cert_file = _path(user["client-certificate"], base)
    if user.get("client-key"):
        key_file = _path(user["client-key"], base)
    if user.get("exec"):
        cred = exec_credential(user["exec"], context)
        if cred.get("token"):
            conn.headers["Authorization"] = f"Bearer {cred['token']}"
        if cred.get("clientCertificateData") and cred.get("clientKeyData"):
            cert_file = _data_file(
                base64.b64encode(cred["clientCertificateData"].encode()).decode(), "exec cert"
            )
            key_file = _data_file(
                base64.b64encode(cred["clientKeyData"].encode()).decode(), "exec key"
            )
    if cert_file and conn.ssl_context is not None:
        conn.ssl_context.load_cert_chain(cert_file, key_file)
    if user.get("token"):
        conn.headers["Authorization"] = f"Bearer {user['token']}"
    elif user.get("tokenFile"):
        token = Path(_path(user["tokenFile"], base)).read_text().strip()
        conn.headers["Authorization"] = f"Bearer {token}"
    elif user.get("username") and user.get("password"):
        basic = base64.b64encode(f"{user['username']}:{user['password']}".encode()).decode()
        conn.headers["Authorization"] = f"Basic {basic}"


def exec_credential(spec: Mapping[str, Any], context: str) -> dict[str, Any]:
    """Run a client-go credential plugin (cloud clusters' usual login) and read its status."""
    command = spec.get("command")
    if not command:
        raise ConfigError(f'context "{context}": users[].user.exec has no command')
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[str(item.get("name"))] = str(item.get("value"))
    api_version = spec.get("apiVersion", "client.authentication.k8s.io/v1")
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {
            "apiVersion": api_version,
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
    )
    try:
        done = subprocess.run(
            [command, *(spec.get("args") or [])],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as err:
        hint = spec.get("installHint") or ""
        raise ConfigError(f"credential plugin {command}: {err}. {hint}".strip()) from err
    if done.returncode != 0:
        raise ConfigError(
            f"credential plugin {command} exited with {done.returncode}: {done.stderr.strip()}"
        )
    try:
        status = json.loads(done.stdout).get("status") or {}
    except ValueError as err:
        raise ConfigError(f"credential plugin {command} printed no ExecCredential JSON") from err
    return dict(status)
