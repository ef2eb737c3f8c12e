"""controller.k8s.Client.exec against a loopback pods/exec WebSocket endpoint.

devcluster has no pods/exec (native mode needs none), so this server speaks just enough of
the v4.channel.k8s.io protocol: one binary frame per chunk, the first byte the channel.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from controller.core.results import EXEC_READ_COMMAND
from controller.k8s import ApiError, Client
from tests.integration.conftest import Plain


@dataclass
class FakeExec:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0
    seen: list[dict] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/pods/missing/exec"):
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        self.seen.append(
            {
                "protocol": ws.ws_protocol,
                "command": request.query.getall("command"),
                "container": request.query.get("container"),
                "auth": request.headers.get("Authorization"),
            }
        )
        for start in range(0, len(self.stdout), 65536):
            await ws.send_bytes(b"\x01" + self.stdout[start : start + 65536])
        if self.stderr:
            await ws.send_bytes(b"\x02" + self.stderr)
        if self.exit_code:
            status = {
                "status": "Failure",
                "reason": "NonZeroExitCode",
                "message": f"command terminated with non-zero exit code: {self.exit_code}",
            }
        else:
            status = {"status": "Success"}
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()
        return ws


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeExec, str]]:
    fake = FakeExec()
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_exec_returns_stdout_byte_for_byte(server):
    fake, url = server
    fake.stdout = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
    client = Client(Plain(url, token="t"))
    try:
        out = await client.exec(
            "ns", "p", "airflow-xcom-sidecar", EXEC_READ_COMMAND, max_stdout=len(fake.stdout)
        )
    finally:
        await client.close()
    assert out == fake.stdout
    (seen,) = fake.seen
    assert seen["protocol"] == "v4.channel.k8s.io"
    assert seen["command"] == EXEC_READ_COMMAND
    assert seen["container"] == "airflow-xcom-sidecar"
    assert seen["auth"] == "Bearer t"


async def test_a_failing_command_raises_with_its_stderr(server):
    fake, url = server
    fake.stderr, fake.exit_code = b"cat: can't open\n", 1
    client = Client(Plain(url, token="t"))
    try:
        with pytest.raises(ApiError, match="can't open"):
            await client.exec("ns", "p", "c", ["cat", "/nope"])
    finally:
        await client.close()


async def test_a_refused_exec_raises_with_the_http_status(server):
    _, url = server
    client = Client(Plain(url, token="t"))
    try:
        with pytest.raises(ApiError) as raised:
            await client.exec("ns", "missing", "c", ["true"])
    finally:
        await client.close()
    assert raised.value.status == 404
