"""The control plane's certificates and keys, made with the openssl command line (Debian's
openssl 3): a CA, the API server's serving certificate, one client certificate per user and
the service-account signing key. openssl is on every machine of this project, so the test
cluster adds no Python dependency; keys are P-256 (fast to make), the service-account key is
RSA (the algorithm every token reader supports)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""
# The names a pod inside the cluster would use for the API server (10.0.0.1 is the
# `kubernetes` Service in SERVICE_CIDR), as kubeadm signs them.
SERVER_NAMES = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)
DAYS = 30


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


class Pki:
    """Files under ``directory``; every method writes its files and returns their paths."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("openssl") is None:
            raise RuntimeError("openssl is not on PATH: the real control plane's PKI needs it")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._config = directory / "openssl.cnf"
        self._config.write_text(_CONFIG)
        self.ca = self._request("ca", "/CN=realcluster-ca", "ca", signed_by=None)

    def server(self, name: str, *, extra_names: tuple[str, ...] = ()) -> KeyPair:
        names = ",".join((*SERVER_NAMES, *extra_names))
        return self._request(
            name,
            f"/CN={name}",
            "server",
            signed_by=self.ca,
            extra=("-addext", f"subjectAltName={names}"),
        )

    def client(self, name: str, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        subject = "".join(f"/O={g}" for g in groups) + f"/CN={user}"
        return self._request(name, subject, "client", signed_by=self.ca)

    def signing_key(self, name: str) -> KeyPair:
        """An RSA key and its public half (``cert`` holds the public key here)."""
        key, pub = self.directory / f"{name}.key", self.directory / f"{name}.pub"
        _openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)
        )
        _openssl("pkey", "-in", str(key), "-pubout", "-out", str(pub))
        return KeyPair(cert=pub, key=key)

    def _request(
        self,
        name: str,
        subject: str,
        extensions: str,
        signed_by: KeyPair | None,
        extra: tuple[str, ...] = (),
    ) -> KeyPair:
        pair = KeyPair(cert=self.directory / f"{name}.crt", key=self.directory / f"{name}.key")
        signer = ("-CA", str(signed_by.cert), "-CAkey", str(signed_by.key)) if signed_by else ()
        _openssl(
            "req", "-x509", "-config", str(self._config), "-extensions", extensions,
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(pair.key), "-out", str(pair.cert), "-days", str(DAYS),
            "-subj", subject, *signer, *extra,
        )  # fmt: skip
        return pair


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
