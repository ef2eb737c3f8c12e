"""DevCluster: the API emulator and the simulated kubelet in their own thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from devcluster.accounting import RequestLog
from devcluster.errors import ApiError
from devcluster.faults import FaultPlan
from devcluster.logs import LogStore
from devcluster.resources import CRDS, ResourceKey
from devcluster.server import ApiServer
from devcluster.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


def kubeconfig(url: str, *, context: str = "devcluster") -> dict[str, Any]:
    """A kubeconfig for a devcluster at url (no TLS; a dummy token for picky clients)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": "devcluster"}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


class DevCluster:
    """An in-process Kubernetes API (simulated, for tests, demos and benchmarks).

    ``start()`` serves in a background thread and returns once the API answers.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        kubelet: bool = True,
        seed: int | None = None,
        history_size: int = 2000,
        bookmark_interval: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.requests = RequestLog()
        self.faults = FaultPlan(seed=seed)
        self.store = Store(
            history_size=history_size, rng=random.Random(seed) if seed is not None else None
        )
        self.server = ApiServer(
            self.store,
            requests=self.requests,
            faults=self.faults,
            logs=self._log_source,
            exec_target=lambda: self.kubelet,
            local_node=lambda: getattr(self.kubelet, "node_name", None),
            bookmark_interval=bookmark_interval,
        )
        self.url = ""
        self.kubeconfig_path: Path | None = None
        self.kubelet: Any = None
        self._with_kubelet = kubelet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._kubelet_task: asyncio.Task[Any] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._stop_event: asyncio.Event | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> DevCluster:
        """Serve in a new thread; returns once the API is listening."""
        if self._thread is not None:
            return self
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="devcluster", daemon=True
        )
        self._thread.start()
        ready.result(timeout=30)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="devcluster-")
        self.write_kubeconfig(Path(self._tmpdir.name) / "kubeconfig")
        return self

    def _thread_main(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._stop_event = asyncio.Event()
        try:
            loop.run_until_complete(self.serve(self._stop_event, lambda: ready.set_result(None)))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.exception("devcluster: the server loop failed")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def serve(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Serve on the running loop until stop is set (used by ``python -m devcluster``)."""
        self._loop = asyncio.get_running_loop()
        await self._start_async()
        try:
            if on_ready is not None:
                on_ready()
            await stop.wait()
        finally:
            await self._stop_async()

    async def _start_async(self) -> None:
        runner = web.AppRunner(
            self.server.app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.port
        self.port = port
        self.url = f"http://{self.host}:{port}"
        self.server.server_address = f"{self.host}:{port}"
        if self._with_kubelet:
            self._start_kubelet()

    def _start_kubelet(self) -> None:
        try:
            from devcluster.kubelet import Kubelet
        except ImportError as exc:  # the kubelet is written alongside; run without it
            log.warning("devcluster: no simulated kubelet (%s)", exc)
            return
        self.kubelet = Kubelet(self.store)
        self._kubelet_task = asyncio.get_running_loop().create_task(self._run_kubelet())

    async def _run_kubelet(self) -> None:
        try:
            await self.kubelet.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("devcluster: the simulated kubelet crashed")

    async def _stop_async(self) -> None:
        if self._kubelet_task is not None:
            self._kubelet_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._kubelet_task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.server.close()

    def stop(self) -> None:
        """Stop serving and join the thread; idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        stop_event = self._stop_event
        if stop_event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=30)
        self._thread = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> DevCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- helpers for tests and tools ------------------------------------------------------

    def _log_source(self) -> LogStore | None:
        return getattr(self.kubelet, "logs", None)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("devcluster is not started")
        return self._loop

    def call(self, coro: Coroutine[Any, Any, T] | Awaitable[T], timeout: float = 30) -> T:
        """Run a coroutine (e.g. a Store call) on the cluster's loop from another thread."""

        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def wait_for_watch(
        self,
        resource: str,
        *,
        agent_prefix: str = "kopf/",
        process: subprocess.Popen[Any] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Return once a client whose user agent starts with ``agent_prefix`` has listed or
        watched ``resource``: kopf reports ready before its watches are open.

        Raises RuntimeError if ``process`` exits first, TimeoutError after ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the process exited with code {process.returncode}")
            if any(
                r.verb in ("list", "watch")
                and r.resource == resource
                and (r.user_agent or "").startswith(agent_prefix)
                for r in self.requests.records
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"no {agent_prefix}* client listed or watched {resource} in {timeout} s")

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        """Write a kubeconfig pointing at this cluster; returns its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(kubeconfig(self.url), sort_keys=False))
        self.kubeconfig_path = target
        return target

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or replace it when it exists (synchronous, CRDs included)."""
        return self.call(self._apply(obj))

    def apply_file(self, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Apply every YAML document in a file, in order."""
        with open(path) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d]
        out = []
        for doc in docs:
            if doc.get("kind") == "List":
                out += [self.apply(item) for item in doc.get("items") or []]
            else:
                out.append(self.apply(doc))
        return out

    def key_for(self, api_version: str, kind: str) -> ResourceKey:
        """The served resource for apiVersion + kind."""
        group, _, version = api_version.rpartition("/")
        for info in self.store.resources():
            if info.key.group == group and info.key.version == version and info.kind == kind:
                return info.key
        raise ApiError(404, f'no matches for kind "{kind}" in version "{api_version}"')

    async def _apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = self.key_for(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or ("default" if self.store.info(key).namespaced else None)
        try:
            current = await self.store.get(key, ns, meta["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise
            return await self.store.create(key, ns, obj)
        body = dict(obj)
        body["metadata"] = {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}
        if key == CRDS or "status" in current:
            body.setdefault("status", current.get("status"))
        return await self.store.replace(key, ns, meta["name"], body)
