"""A minimal Kubernetes API client over the standard library, for the launcher's readiness
checks and the fixture's helpers (the tests themselves use kubectl or the project's clients)."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

from realcluster.pki import KeyPair

JsonDict = dict[str, Any]


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, body: JsonDict) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{method} {path}: HTTP {status}: {body.get('message', body)}")


class Api:
    def __init__(
        self,
        server: str,
        ca: Path | None,
        client: KeyPair | None = None,
        token: str | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(server)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if ca is None:  # kube-controller-manager and kube-scheduler serve self-signed certs
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        if client is not None:
            self.context.load_cert_chain(str(client.cert), str(client.key))
        self.token = token

    def _connect(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=timeout
        )

    def _headers(self, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def raw(
        self, method: str, path: str, obj: JsonDict | None = None, timeout: float = 10.0
    ) -> tuple[int, bytes]:
        body = json.dumps(obj).encode() if obj is not None else None
        conn = self._connect(timeout)
        try:
            conn.request(method, path, body=body, headers=self._headers(body))
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def call(self, method: str, path: str, obj: JsonDict | None = None) -> JsonDict:
        status, data = self.raw(method, path, obj)
        try:
            parsed: JsonDict = json.loads(data) if data else {}
        except ValueError:
            parsed = {"message": data[:200].decode(errors="replace")}
        if status >= 400:
            raise ApiError(method, path, status, parsed)
        return parsed
