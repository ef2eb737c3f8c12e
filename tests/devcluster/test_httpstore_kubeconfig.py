"""The node agent's kubeconfig reading (devcluster/httpstore.py): which server, which TLS
material, which token, for the shapes kubeconfigs come in."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.httpstore import load_kubeconfig


def write(tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("pem")
    cert, key = where / "tls.crt", where / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-days", "1", "-keyout", str(key), "-out", str(cert),
         "-subj", "/CN=test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize(
    ("user", "token"),
    [({"token": "abc"}, "abc"), ({"tokenFile": "token"}, "from-file"), ({}, None)],
)
def test_plain_http_server_and_tokens(
    tmp_path: Path, user: dict[str, Any], token: str | None
) -> None:
    (tmp_path / "token").write_text("from-file\n")
    if "tokenFile" in user:
        user = {"tokenFile": str(tmp_path / "token")}
    creds = load_kubeconfig(write(tmp_path, {"server": "http://127.0.0.1:1/"}, user))
    assert (creds.server, creds.ssl, creds.token) == ("http://127.0.0.1:1", False, token)


@pytest.mark.parametrize("inline", [True, False])
def test_tls_material_inline_or_in_files_relative_to_the_kubeconfig(
    tmp_path: Path, pem: tuple[Path, Path], inline: bool
) -> None:
    cert, key = pem
    if inline:
        cluster = {"certificate-authority-data": base64.b64encode(cert.read_bytes()).decode()}
        user = {
            "client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
            "client-key-data": base64.b64encode(key.read_bytes()).decode(),
        }
    else:
        (tmp_path / "ca.crt").write_bytes(cert.read_bytes())
        (tmp_path / "me.crt").write_bytes(cert.read_bytes())
        (tmp_path / "me.key").write_bytes(key.read_bytes())
        cluster = {"certificate-authority": "ca.crt"}
        user = {"client-certificate": "me.crt", "client-key": "me.key"}
    cluster["server"] = "https://127.0.0.1:6443"
    creds = load_kubeconfig(write(tmp_path, cluster, user))
    assert isinstance(creds.ssl, ssl.SSLContext)
    assert creds.ssl.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in creds.ssl.get_ca_certs()] == [((("commonName", "test"),),)]


def test_insecure_skip_verify_and_a_missing_server(tmp_path: Path) -> None:
    creds = load_kubeconfig(
        write(tmp_path, {"server": "https://h:1", "insecure-skip-tls-verify": True}, {})
    )
    assert isinstance(creds.ssl, ssl.SSLContext) and creds.ssl.verify_mode == ssl.CERT_NONE
    with pytest.raises(ValueError, match="cluster 'c' has no server"):
        load_kubeconfig(write(tmp_path, {}, {}))
