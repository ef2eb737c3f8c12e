"""Start devcluster and the controller the way a user would, for measuring them; the
controller also on the real control plane (bench.real, bench.kpo_real)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from devcluster import DevCluster
from devcluster.accounting import RequestRecord
from taskrun.api import API_VERSION, GROUP, KIND, PLURAL, VERSION

ROOT = Path(__file__).resolve().parent.parent
CONTROLLER_AGENT = "kopf"  # kopf's user agent prefix; the controller's own client says taskrun


def controller_python() -> str:
    """The interpreter that runs the controller: ``BENCH_CONTROLLER_PYTHON`` (``make bench``
    points it at .venv-runtime, the image's dependencies only), else this one."""
    return os.environ.get("BENCH_CONTROLLER_PYTHON") or sys.executable


@contextmanager
def running_cluster(*, default_gc: bool = False) -> Any:
    """devcluster with the CRD; ``default_gc`` keeps Python's collector as it comes."""
    cluster = DevCluster()
    cluster.start()
    try:
        cluster.apply_file(ROOT / "crds" / "taskrun.yaml")
        if not default_gc:
            quiet_gc()
        yield cluster
    finally:
        cluster.stop()


def controller_argv(*extra: str, python: str | None = None) -> list[str]:
    """``python -m controller --all-namespaces``, its metrics and health ports off: how every
    benchmark runs the controller (``python``: controller_python() unless given)."""
    return [
        python or controller_python(), "-m", "controller", "--all-namespaces",
        "--metrics-port", "0", "--health-port", "0",
        *extra,
    ]  # fmt: skip


@contextmanager
def controller_process(
    *extra: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The controller (controller_argv), its output appended to ``log``, or dropped. Stopped
    when the block ends (SIGTERM, SIGKILL after 15 s), and killed with the harness, as the
    control plane's components are (realcluster/processes.py), so a harness that dies leaves
    none behind: the kernel ties that to the starting thread, and every benchmark starts it
    from its main thread. ``cwd``: a directory whose ``controller`` package runs instead of
    this tree's (``python -m`` looks there first)."""
    setpriv = shutil.which("setpriv")
    argv = [*([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []), *controller_argv(*extra)]
    with open(log, "ab") if log else open(os.devnull, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_controller(
    cluster: DevCluster, *extra: str, cwd: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The controller on devcluster; yields once it lists or watches TaskRuns. ``cwd``: see
    controller_process."""
    with tempfile.TemporaryDirectory(prefix="taskrun-bench-") as tmp:
        kubeconfig = str(Path(tmp, "kubeconfig"))
        cluster.write_kubeconfig(kubeconfig)
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        with controller_process(*extra, env=env, cwd=cwd) as proc:
            cluster.wait_for_watch(PLURAL, process=proc)
            yield proc


@contextmanager
def running_controller_audited(
    kubeconfig: Path,
    user: str,
    records: Callable[[], Iterable[RequestRecord]],
    log: Path,
    timeout: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """The controller on an API server that writes an audit log (the real control plane),
    logged in with ``kubeconfig`` as ``user``; yields once it watches TaskRuns and pods.

    kopf says it is ready before its watches exist, so the audit log is what tells: ``records``
    reads it (each caller's own reader, up to a barrier request) into RequestRecords that
    carry the ``user``. A controller that exits or does not watch within ``timeout`` s fails
    the start with the end of its log."""
    since = time.time()
    with controller_process("--kubeconfig", str(kubeconfig), log=log) as proc:
        deadline = time.monotonic() + timeout
        missing = {PLURAL, "pods"}
        while True:
            missing -= {
                r.resource
                for r in records()
                if r.verb == "watch" and r.started >= since and getattr(r, "user", "") == user
            }
            if not missing:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exited with {proc.returncode}"
                    if proc.returncode is not None
                    else f"did not watch {' and '.join(sorted(missing))} in {timeout:g} s"
                )
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the controller {why}; the end of its log {log}:\n{tail}")
            time.sleep(0.1)
        yield proc


def quiet_gc() -> None:
    """Keep Python's full collections from stopping devcluster for hundreds of milliseconds.

    devcluster stands in for a Go API server, whose collector runs concurrently; with tens of
    thousands of stored objects a full (generation 2) collection here took up to 257 ms and
    showed up as the p99 of the controller's latency, though it is the simulator's pause.
    What exists after set-up is frozen out of collections, and full collections are rarer.
    The controller process keeps its own settings (controller/main.py).
    """
    gc.freeze()
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, 1000)


class Api:
    """The few calls the benchmarks make, over one keep-alive session."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), headers={"User-Agent": "bench"}
        )

    async def close(self) -> None:
        await self.session.close()

    def _path(self, namespace: str, name: str = "", status: bool = False) -> str:
        path = f"{self.url}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        if name:
            path += f"/{name}"
        if status:
            path += "/status"
        return path

    async def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        async with self.session.post(f"{self.url}/api/v1/namespaces", json=body) as resp:
            if resp.status not in (201, 409):
                raise RuntimeError(await resp.text())

    async def create_taskrun(self, namespace: str, name: str, spec: dict[str, Any]) -> dict:
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        async with self.session.post(self._path(namespace), json=body) as resp:
            if resp.status != 201:
                raise RuntimeError(f"{resp.status}: {await resp.text()}")
            return await resp.json()

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        async with self.session.patch(
            self._path(namespace, name, status=True),
            data=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {await resp.text()}")

    async def watch(self, path: str, resource_version: str = "") -> AsyncIterator[dict]:
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.session.get(f"{self.url}{path}", params=params, timeout=timeout) as resp:
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)


async def gather_limited(coros: list[Any], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))
