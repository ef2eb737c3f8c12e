"""A command's outcome as the remote-command protocol carries it, one implementation for
devcluster's pods/exec and the node agent's `/exec/...`.

Two transports: WebSocket (channel.k8s.io v4/v5: one binary message per channel, the v1
Status on channel 3), which clients speak to an API server and which kube-apiserver passes
through to a kubelet for v4 clients (the controller, the Python client); and SPDY/3.1
(one stream per channel), which kube-apiserver speaks to a kubelet when it translates a
v5 WebSocket client (kubectl 1.30+). Non-interactive only: no stdin, no TTY.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web

from devcluster import spdy
from devcluster.errors import ApiError, bad_request
from devcluster.shell import Outcome, exec_status

# The WebSocket sub-protocols served; v5 adds a close channel, unused without stdin.
WEBSOCKET_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
# The protocol spoken over SPDY (v4: the v1 Status on the error stream).
SPDY_PROTOCOL = "v4.channel.k8s.io"
STDOUT, STDERR, ERROR = 1, 2, 3
# Stdout goes out in frames of this size: kube-apiserver relays a kubelet's stream in the
# frames of its copy buffer (io.Copy's 32 KiB), never as one message.
FRAME_BYTES = 32 * 1024
# How long an exec connection may stay open (the command itself is instant).
STREAM_TIMEOUT = 60.0

Run = Callable[[], Outcome]


def wants_spdy(request: web.Request) -> bool:
    return "spdy/3.1" in request.headers.get("Upgrade", "").lower()


async def websocket(
    request: web.Request,
    command: list[str],
    run: Run,
    *,
    stdout: bool,
    stderr: bool,
    opened: Callable[[], object] | None = None,
) -> web.WebSocketResponse:
    """Answer over WebSocket: stdout, stderr, then the status, then close.

    ``opened`` is called once the 101 is out (devcluster records the request then)."""
    ws = web.WebSocketResponse(protocols=WEBSOCKET_PROTOCOLS)
    if not ws.can_prepare(request).ok:
        raise bad_request("Upgrade request required (exec is served over WebSocket or SPDY)")
    outcome = run()
    await ws.prepare(request)
    if opened is not None:
        opened()
    if stdout and outcome.stdout:
        view = memoryview(outcome.stdout)
        try:
            for start in range(0, len(view), FRAME_BYTES):
                await ws.send_bytes(bytes([STDOUT]) + view[start : start + FRAME_BYTES])
        except ConnectionResetError:
            return ws  # the client stopped reading (a bounded read), as it may
    if stderr and outcome.stderr:
        await ws.send_bytes(bytes([STDERR]) + bytes(outcome.stderr))
    await ws.send_bytes(bytes([ERROR]) + json.dumps(exec_status(command, outcome.code)).encode())
    await ws.close()
    return ws


class _Feeder:
    """Receives the connection's bytes after the upgrade (aiohttp's payload parser slot)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


async def spdy_exec(
    request: web.Request, command: list[str], run: Run, *, channels: set[str]
) -> web.StreamResponse:
    """Answer over SPDY/3.1: wait for the client's streams (``channels``, "error" always),
    reply to each, write the output and the status, end every stream."""
    offered = [
        p.strip()
        for value in request.headers.getall("X-Stream-Protocol-Version", [])
        for p in value.split(",")
    ]
    if SPDY_PROTOCOL not in offered:
        raise ApiError(403, f"no common stream protocol: {offered}; supported: [{SPDY_PROTOCOL}]")
    incoming = asyncio.StreamReader()
    # aiohttp hands over a connection only for WebSocket upgrades; taking its bytes before
    # the 101 goes out, nothing of SPDY reaches the HTTP parser.
    request.protocol.set_parser(_Feeder(incoming))  # type: ignore[arg-type]
    response = web.StreamResponse(status=101)
    response.headers.update(
        {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": SPDY_PROTOCOL}
    )
    response.force_close()
    await response.prepare(request)
    transport = request.transport
    assert transport is not None
    try:
        await asyncio.wait_for(
            _serve(incoming, transport.write, command, run, channels | {"error"}), STREAM_TIMEOUT
        )
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        pass  # the client went away; nothing is left to tell it
    finally:
        transport.close()
    return response


async def _serve(
    incoming: asyncio.StreamReader,
    write: Callable[[bytes], object],
    command: list[str],
    run: Run,
    channels: set[str],
) -> None:
    codec = spdy.Codec()
    streams: dict[str, int] = {}
    while set(streams) != channels:
        frame = await codec.read(incoming)
        if frame.control and frame.kind == spdy.SYN_STREAM:
            streams[codec.headers(frame).get("streamtype", "")] = frame.stream_id
            write(codec.syn_reply(frame.stream_id))
        elif frame.control and frame.kind == spdy.PING:
            write(codec.ping(frame.payload))
    outcome = run()
    if "stdout" in streams and outcome.stdout:
        view = memoryview(outcome.stdout)
        for start in range(0, len(view), FRAME_BYTES):
            write(codec.data(streams["stdout"], bytes(view[start : start + FRAME_BYTES])))
    if "stderr" in streams and outcome.stderr:
        write(codec.data(streams["stderr"], bytes(outcome.stderr)))
    if outcome.code:
        write(codec.data(streams["error"], json.dumps(exec_status(command, outcome.code)).encode()))
    for stream_id in streams.values():
        write(codec.data(stream_id, b"", fin=True))
    # The client closes once it has read every stream to its end; answer its pings meanwhile.
    while True:
        frame = await codec.read(incoming)
        if frame.control and frame.kind == spdy.PING:
            write(codec.ping(frame.payload))
        elif frame.control and frame.kind == spdy.GOAWAY:
            return
