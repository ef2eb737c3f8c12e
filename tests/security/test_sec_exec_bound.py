"""Issue 13, item 2: result and log reads are bounded, whatever the pod or server sends.

With ``--xcom-mode=exec`` the whole return.json used to be read into memory before its
size was compared with --max-result-bytes: a 256 MiB file took the controller past its
512Mi limit. Now the read stops at the cap plus one byte (closing the stream), and so does
every pods/log read, even from a server that ignores limitBytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from controller.core.results import EXEC_READ_COMMAND
from controller.k8s import Client
from devcluster.pytest_plugin import wait_for
from testcluster import Cluster
from tests.integration.conftest import ROOT, SCENARIO, TASKRUNS, Plain

MIB = 1024 * 1024
FRAME = 32 * 1024


@dataclass
class Endless:
    """An API endpoint that never stops sending: pods/exec stdout and pods/log bodies."""

    sent: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def exec(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        try:
            while not ws.closed:
                await ws.send_bytes(b"\x01" + b"x" * FRAME)
                self.sent += FRAME
                await asyncio.sleep(0)
        except ConnectionResetError:
            pass
        self.closed.set()
        return ws

    async def log(self, request: web.Request) -> web.StreamResponse:
        # limitBytes ignored, as a broken proxy or a hostile node might.
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"y" * FRAME)
                self.sent += FRAME
        except (ConnectionResetError, RuntimeError):
            pass
        self.closed.set()
        return response


@pytest.fixture
async def endless() -> AsyncIterator[tuple[Endless, str]]:
    server = Endless()
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", server.exec)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/log", server.log)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_an_exec_read_stops_one_byte_past_its_cap(endless: tuple[Endless, str]) -> None:
    server, url = endless
    client = Client(Plain(url))
    try:
        out = await asyncio.wait_for(
            client.exec("ns", "p", "airflow-xcom-sidecar", EXEC_READ_COMMAND, max_stdout=MIB),
            timeout=10,
        )
        await asyncio.wait_for(server.closed.wait(), timeout=10)
    finally:
        await client.close()
    assert len(out) == MIB + 1


async def test_a_log_read_stops_at_its_limit_when_the_server_ignores_it(
    endless: tuple[Endless, str],
) -> None:
    _, url = endless
    client = Client(Plain(url))
    try:
        data, complete = await asyncio.wait_for(
            client.read_log("ns", "p", "airflow-xcom-sidecar", limit_bytes=MIB), timeout=10
        )
        tail = await asyncio.wait_for(
            client.read_tail("ns", "p", "base", lines=10, max_bytes=1000), timeout=30
        )
    finally:
        await client.close()
    assert (len(data), complete) == (MIB, False)
    # Endless lines cannot end: the tail says so instead of passing a middle off as the end.
    assert tail.truncated
    assert "its end was not read" in tail.text


# --- end to end: the controller's memory while a huge result is offered ----------------------


def _vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def exec_controller(cluster: Cluster) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m controller --xcom-mode=exec`` as a process of its own, so its memory is
    its own (devcluster, holding the file, lives in this process)."""
    # The extra grant docs/operations.md tells exec-mode users to add in their overlay.
    rule = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]}
    cluster.grant_controller("taskrun-controller-exec", [rule])
    kubeconfig = cluster.controller_kubeconfig
    since = time.time()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "--xcom-mode=exec",
            "--metrics-port=0",
            *["--health-port=0"],
        ],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or any(
                    r.started >= since
                    for r in cluster.requests.filter(verb="list", resource="pods", code=200)
                )
            ),
            timeout=30,
            what="the controller to list pods",
        )
        assert proc.poll() is None, "the controller exited"
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(120)
def test_a_huge_exec_result_leaves_the_controllers_memory_flat(
    cluster: Cluster, kube_ns: str, exec_controller: subprocess.Popen[bytes]
) -> None:
    size_mib = 128
    content = {"parts": ['"', {"text": "a" * 1024, "repeat": size_mib * 1024}, '"']}
    scenario = {"runSeconds": 0.1, "files": {"/airflow/xcom/return.json": content}}
    body = {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": "huge", "namespace": kube_ns},
        "spec": {
            "image": "busybox",
            "doXcomPush": True,
            "annotations": {SCENARIO: json.dumps(scenario)},
        },
    }
    before = _vm_hwm(exec_controller.pid)
    cluster.require_scenarios()
    cluster.create(TASKRUNS, kube_ns, body)

    def status() -> dict:
        found = cluster.get(TASKRUNS, kube_ns, "huge")
        return found.get("status") or {}

    wait_for(lambda: status().get("phase") == "Failed", timeout=90, what="the run to fail")
    peak = _vm_hwm(exec_controller.pid)
    assert status()["reason"] == "ResultTooLarge"
    assert f"{size_mib * MIB + 2} bytes" in status()["message"]
    # Before the bound the whole file was read: the peak grew by twice its size.
    assert peak - before < 32 * MIB, f"peak RSS grew by {(peak - before) / MIB:.0f} MiB"
