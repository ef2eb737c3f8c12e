"""A tiny HTTP client for devcluster tests (urllib, no retries, no client-side magic)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    accept: str = "application/json",
    agent: str = "devcluster-tests",
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", content_type)
    req.add_header("Accept", accept)
    req.add_header("User-Agent", agent)
    try:
        with urllib.request.urlopen(req, timeout=10) as rsp:
            raw, code, headers = rsp.read(), rsp.status, dict(rsp.headers)
    except urllib.error.HTTPError as err:
        raw, code, headers = err.read(), err.code, dict(err.headers)
    ctype = headers.get("Content-Type", "")
    return code, headers, json.loads(raw) if raw and "json" in ctype else raw


def stream(base: str, path: str, agent: str = "devcluster-tests") -> Iterator[dict[str, Any]]:
    """The JSON lines of a watch, as they arrive."""
    req = urllib.request.Request(base + path, headers={"User-Agent": agent})
    with urllib.request.urlopen(req, timeout=10) as rsp:
        for line in rsp:
            if line.strip():
                yield json.loads(line)
