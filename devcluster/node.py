"""The node agent: devcluster's simulated kubelet as a node of any Kubernetes API server.

    python -m devcluster.node --kubeconfig PATH [--name NODE] [--port PORT] [--schedule]

It speaks the kubelet's protocol: registers a Node (Ready, InternalIP, the kubelet
endpoint's port, capacity for the scheduler), renews its Lease in kube-node-lease,
watches the pods bound to it (fieldSelector spec.nodeName), plays each pod's scenario
(devcluster/scenario.py) writing pods/status and Events, finishes graceful deletion
with a grace-period-0 delete, and serves HTTPS `/containerLogs/{ns}/{pod}/{container}`
for the API server's node proxy (`kubectl logs`, pods/log). The kubelet is the one in
devcluster/kubelet.py; only the transport differs (devcluster/httpstore.py).

`--schedule` makes it bind unscheduled pods too, for an API server without a
scheduler (devcluster started with --no-kubelet).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from devcluster import execstream, logstream, shell
from devcluster.errors import ApiError
from devcluster.httpstore import HttpStore
from devcluster.kubelet import NODE_NAME, Kubelet

log = logging.getLogger("devcluster.node")

# The kubelet's serving certificate: self-signed, as a kubelet without
# --tls-cert-file makes one; kube-apiserver checks it only given --kubelet-certificate-authority.
_OPENSSL = (
    "openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
    "-days 3650 -keyout {key} -out {cert} -subj /CN={name} "
    "-addext subjectAltName=IP:{address},DNS:{name}"
)


def serving_certificate(directory: Path, name: str, address: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``address``."""
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    subprocess.run(
        _OPENSSL.format(key=key, cert=cert, name=name, address=address).split(),
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class NodeAgent:
    """The simulated kubelet plus its HTTPS endpoint, driven over an HttpStore."""

    def __init__(
        self,
        store: HttpStore,
        *,
        name: str = NODE_NAME,
        address: str = "127.0.0.1",
        port: int = 0,
        schedule: bool = False,
        lease_renew_seconds: float | None = 10.0,
        image_pull_backoff: float = 1.0,
        max_pods: int = 110,
    ) -> None:
        self.store = store
        self.name = name
        self.max_pods = max_pods
        self.address = address
        self.port = port
        self.schedule = schedule
        self.lease_renew_seconds = lease_renew_seconds
        self.image_pull_backoff = image_pull_backoff
        self.kubelet: Kubelet | None = None
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    # -- the kubelet endpoint ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._container_logs)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", "/exec/{namespace}/{pod}/{container}", self._exec)
        return app

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        """Run a command in a container, as kube-apiserver reaches a kubelet for pods/exec:
        WebSocket passed through for v4 clients, SPDY for the v5 clients it translates.
        The query is the kubelet's (input, output, error, tty). No stdin, no TTY."""
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        container = request.match_info["container"]
        command = request.query.getall("command", [])
        if not command:
            raise ApiError(400, "you must specify at least 1 command")
        query = request.query
        if logstream.query_bool(query.get("tty")) or logstream.query_bool(query.get("input")):
            raise ApiError(400, "the node agent's exec takes no stdin and no TTY")
        kubelet = self.kubelet
        if kubelet is None or not kubelet.runs(ns, pod):
            raise ApiError(404, f'pod "{pod}" in namespace "{ns}" not found on this node')
        kubelet.exec_check(ns, pod, container)

        def run() -> shell.Outcome:
            assert kubelet is not None
            return kubelet.exec(ns, pod, container, list(command))

        stdout = logstream.query_bool(query.get("output"))
        stderr = logstream.query_bool(query.get("error"))
        if execstream.wants_spdy(request):
            channels = {name for name, on in (("stdout", stdout), ("stderr", stderr)) if on}
            return await execstream.spdy_exec(request, command, run, channels=channels)
        return await execstream.websocket(request, command, run, stdout=stdout, stderr=stderr)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            # The kubelet answers errors in plain text; the API server passes the text on.
            return web.Response(status=exc.code, text=exc.message)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        container = request.match_info["container"]
        kubelet = self.kubelet
        if kubelet is None or not kubelet.runs(ns, pod):
            raise ApiError(404, f'pod "{pod}" in namespace "{ns}" not found on this node')
        return await logstream.respond(
            request,
            kubelet.logs,
            ns,
            pod,
            container,
            request.query,
            now=lambda: datetime.datetime.now(datetime.timezone.utc),
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the endpoint, register the node, start playing pods; returns once the
        first pod list was dispatched."""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="node-agent-")
        tls = serving_certificate(Path(self._tmpdir.name), self.name, self.address)
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.address, self.port, ssl_context=tls)
        await site.start()
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.kubelet = Kubelet(
            self.store,
            self.name,
            schedule=self.schedule,
            node_ip=self.address,
            kubelet_port=self.port,
            lease_renew_seconds=self.lease_renew_seconds,
            image_pull_backoff=self.image_pull_backoff,
            max_pods=self.max_pods,
        )
        self._task = asyncio.create_task(self._run(self.kubelet), name="node-agent")
        listening = asyncio.create_task(self.kubelet.wait_listening())
        await asyncio.wait([listening, self._task], return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            listening.cancel()
            self._task.result()  # the kubelet ended before it listed: its error

    async def _run(self, kubelet: Kubelet) -> None:
        # The API server may still be starting: registration is tried again, as the
        # kubelet does, until it succeeds.
        delay = 0.2
        while True:
            try:
                await kubelet.run()
                return
            except (ApiError, aiohttp.ClientError, OSError) as exc:
                log.warning("node agent: %s, trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.store.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    @property
    def endpoint(self) -> str:
        return f"https://{self.address}:{self.port}"


class AgentProcess:
    """``python -m devcluster.node`` as a child process, for fixtures and launchers.

    ``start()`` returns once the node is registered and listing its pods; its log goes
    to ``log_path`` (a pipe nobody reads would stall the agent once full).
    """

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        *args: str,
        name: str = NODE_NAME,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.command = [
            sys.executable, "-m", "devcluster.node",
            "--kubeconfig", str(kubeconfig), "--name", name, *args,
        ]  # fmt: skip
        self.name = name
        self.log_path = Path(log_path) if log_path else None
        self.endpoint = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> AgentProcess:
        log_file = open(self.log_path, "a") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        # The agent must not outlive whoever started it, even one killed with no chance to
        # clean up (a SIGKILLed launcher): the kernel's parent-death signal, as the control
        # plane's components get it (realcluster/processes.py).
        setpriv = shutil.which("setpriv")
        command = [setpriv, "--pdeathsig", "KILL", "--", *self.command] if setpriv else self.command
        try:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log_file, text=True
            )
        finally:
            if self.log_path:
                log_file.close()  # type: ignore[union-attr]
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if " ready: kubelet endpoint " not in line:
            self.stop()
            where = f"; its log: {self.log_path}" if self.log_path else ""
            raise RuntimeError(f"node agent {self.name} did not start in {timeout} s{where}")
        self.endpoint = line.rsplit(" ", 1)[-1].strip()
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _main(args: argparse.Namespace) -> None:
    store = HttpStore.from_kubeconfig(args.kubeconfig, args.context)
    agent = NodeAgent(
        store,
        name=args.name,
        address=args.address,
        port=args.port,
        schedule=args.schedule,
        lease_renew_seconds=args.lease_seconds or None,
        max_pods=args.max_pods,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await agent.start()
    # One line a script can wait for.
    print(f"node {agent.name} ready: kubelet endpoint {agent.endpoint}", flush=True)
    try:
        await stop.wait()
    finally:
        await agent.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.node",
        description="A simulated node (devcluster's kubelet) for any Kubernetes API server.",
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), required=False)
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("--name", default=NODE_NAME, help=f"node name (default {NODE_NAME})")
    parser.add_argument("--address", default="127.0.0.1", help="InternalIP and listen address")
    parser.add_argument("--port", type=int, default=0, help="kubelet endpoint port (0: any)")
    parser.add_argument(
        "--schedule", action="store_true", help="also bind unscheduled pods (no scheduler)"
    )
    parser.add_argument(
        "--lease-seconds", type=float, default=10.0, help="Lease renewal period (0: no Lease)"
    )
    parser.add_argument(
        "--max-pods",
        type=int,
        default=110,
        help="the Node's pods capacity, as the kubelet's --max-pods (default 110)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.kubeconfig:
        parser.error("--kubeconfig is required (or set KUBECONFIG)")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
