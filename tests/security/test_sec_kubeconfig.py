"""Issue 13, item 11: the controller connects with a kubeconfig of any shape kubectl reads.

kind and kubeadm embed their certificates (certificate-authority-data, client-certificate-
data, client-key-data): the controller's client used to hand the still-base64 values to
``ssl`` and fail every request, and wrote the client key to a temporary file it never
removed. Each shape is tried against a TLS endpoint on loopback that asks for a client
certificate, with the real kubectl as the oracle, and nothing may be left on disk.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from aiohttp import web

from controller import k8s
from controller.k8s import Client, KubeconfigError

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (CN=tester)."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt",
            "-subj", "/CN=test-ca", "-days", "1", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subject, ext in (("server", "/CN=127.0.0.1", ["-extfile", "san.ext"]),
                               ("client", "/CN=tester/O=system:masters", [])):  # fmt: skip
        openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject, cwd=directory)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", *ext,
                cwd=directory)  # fmt: skip


@dataclass
class TlsApi:
    """/version over TLS; remembers who asked (client certificate CN, bearer token)."""

    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def version(self, request: web.Request) -> web.Response:
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in (cert or {}).get("subject", ()))
        self.seen.append(
            {"cn": subject.get("commonName"), "auth": request.headers.get("Authorization")}
        )
        info = {"major": "1", "minor": "37", "gitVersion": "v1.37.2", "platform": "linux/amd64"}
        return web.json_response(info)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    make_pki(directory)
    return directory


@pytest.fixture
async def api(pki: Path) -> AsyncIterator[TlsApi]:
    server = TlsApi()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.verify_mode = ssl.CERT_OPTIONAL
    app = web.Application()
    app.router.add_get("/version", server.version)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"https://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


EXEC_PLUGIN = """\
import json, os, sys
request = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert request["spec"]["interactive"] is False
status = {STATUS}
print(json.dumps({"apiVersion": request["apiVersion"], "kind": "ExecCredential",
                  "status": status}))
"""


def shapes(pki: Path, home: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any], dict]]:
    """kubeconfig shapes: (cluster, user, what the server must see)."""
    (home / "token.txt").write_text("file-token\n")
    for name in ("ca.crt", "client.crt", "client.key"):
        shutil.copy(pki / name, home / name)
    plugin = home / "plugin.py"
    plugin.write_text(EXEC_PLUGIN.replace("{STATUS}", '{"token": "exec-token"}'))
    cert_plugin = home / "cert-plugin.py"
    status = {
        "clientCertificateData": (pki / "client.crt").read_text(),
        "clientKeyData": (pki / "client.key").read_text(),
    }
    cert_plugin.write_text(EXEC_PLUGIN.replace("{STATUS}", json.dumps(status)))
    embedded_ca = {"certificate-authority-data": b64(pki / "ca.crt")}
    python = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable}
    return {
        "embedded": (
            embedded_ca,
            {
                "client-certificate-data": b64(pki / "client.crt"),
                "client-key-data": b64(pki / "client.key"),
            },
            {"cn": "tester", "auth": None},
        ),
        "files": (
            {"certificate-authority": "ca.crt"},  # relative to the kubeconfig, as kubectl
            {"client-certificate": "client.crt", "client-key": "client.key"},
            {"cn": "tester", "auth": None},
        ),
        "token": (
            embedded_ca,
            {"token": "plain-token"},
            {"cn": None, "auth": "Bearer plain-token"},
        ),
        "tokenFile": (
            embedded_ca,
            {"tokenFile": "token.txt"},
            {"cn": None, "auth": "Bearer file-token"},
        ),
        "insecure": (
            {"insecure-skip-tls-verify": True},
            {"token": "plain-token"},
            {"cn": None, "auth": "Bearer plain-token"},
        ),
        "exec-token": (
            embedded_ca,
            {"exec": {**python, "args": [str(plugin)], "interactiveMode": "Never"}},
            {"cn": None, "auth": "Bearer exec-token"},
        ),
        "exec-cert": (
            embedded_ca,
            {"exec": {**python, "args": [str(cert_plugin)], "interactiveMode": "Never"}},
            {"cn": "tester", "auth": None},
        ),
    }


def write_kubeconfig(path: Path, server: str, cluster: dict, user: dict) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def login() -> kopf.ConnectionInfo | None:
    return k8s.login(settings=kopf.OperatorSettings(), logger=logging.getLogger("test"))


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``tempfile`` puts files while the test runs: it must end up empty."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


SHAPES = ["embedded", "files", "token", "tokenFile", "insecure", "exec-token", "exec-cert"]


@pytest.mark.parametrize("shape", SHAPES)
async def test_the_controller_connects_with_each_kubeconfig_shape(
    api: TlsApi,
    pki: Path,
    tmp_path: Path,
    temp_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    shape: str,
) -> None:
    home = tmp_path / "kube"
    home.mkdir()
    cluster, user, expected = shapes(pki, home)[shape]
    kubeconfig = write_kubeconfig(home / "config", api.url, cluster, user)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working directory
    info = await asyncio.to_thread(login)
    assert info is not None
    client = Client(info)
    try:
        assert await client.server_version() == (1, 37)
    finally:
        await client.close()
    assert api.seen[-1] == expected
    assert os.listdir(temp_dir) == [], "key material was left on disk"
    if KUBECTL:
        # kubectl, reading the same file, agrees that it works and sends the same identity.
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "version", "-o", "json", "--request-timeout=10s",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(home)},
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["serverVersion"]["minor"] == "37"
        assert api.seen[-1] == expected


async def test_an_unknown_ca_is_refused(
    api: TlsApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", api.url, {}, {"token": "t"})
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    info = await asyncio.to_thread(login)
    assert info is not None
    client = Client(info, max_tries=1)
    try:
        assert await client.server_version() is None  # the certificate was not trusted
    finally:
        await client.close()
    assert api.seen == []


@pytest.mark.parametrize(
    ("user", "words"),
    [
        ({"tokenFile": "missing.txt"}, "tokenFile"),
        ({"exec": {"command": "/nonexistent/plugin"}}, "exec.command"),
        ({"exec": {"command": "false"}}, "exited 1"),
    ],
)
def test_unusable_credentials_name_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: dict, words: str
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", "https://127.0.0.1:1", {}, user)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(KubeconfigError, match=words):
        login()


async def test_a_new_login_gives_the_controller_a_new_client(api: TlsApi, pki: Path) -> None:
    # An exec plugin's token expires; kopf logs in again and the login handler stores the
    # new credentials: the controller's own requests must use them from then on.
    from controller.config import Settings
    from controller.handlers import Controller

    ca = (pki / "ca.crt").read_text()
    controller = Controller(Settings())
    controller.credentials = kopf.ConnectionInfo(server=api.url, ca_data=ca, token="old")
    first = await controller.client()
    assert await first.server_version() == (1, 37)
    controller.credentials = kopf.ConnectionInfo(server=api.url, ca_data=ca, token="new")
    second = await controller.client()
    assert second is not first
    assert await second.server_version() == (1, 37)
    assert [seen["auth"] for seen in api.seen] == ["Bearer old", "Bearer new"]
    await first.close()
    await controller.close()
