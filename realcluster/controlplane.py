"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback, in one
temporary directory (certificates, etcd's data, kubeconfigs and one log per component)."""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import yaml

from realcluster import audit
from realcluster.build import BIN_DIR, missing_binaries
from realcluster.client import Api, ApiError
from realcluster.pki import KeyPair, Pki
from realcluster.processes import Component, free_ports

SERVICE_CIDR = "10.0.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"
# The controllers a TaskRun's life touches (service accounts and their tokens, namespace
# deletion, owner-reference garbage collection, the kube-root-ca.crt ConfigMap that
# projected token volumes mount, aggregated ClusterRoles, quotas). Node and workload
# controllers stay off: a node agent that misses heartbeats would see its pods evicted by
# node-lifecycle, and pod-garbage-collector deletes pods bound to unknown nodes.
CONTROLLERS = (
    "serviceaccount-token-controller",
    "serviceaccount-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "resourcequota-controller",
)
# For the benchmarks' side-by-side (bench/real.py): batch/v1 Jobs run to completion, and
# finished Jobs with ttlSecondsAfterFinished are deleted (the garbage collector is on already).
JOB_CONTROLLERS = (*CONTROLLERS, "job-controller", "ttl-after-finished-controller")
START_TIMEOUT = 180.0


class ControlPlaneError(RuntimeError):
    pass


class ControlPlane:
    """``with ControlPlane() as plane:`` starts and waits for readiness; leaving stops every
    process. ``plane.kubeconfig`` is an admin (system:masters) kubeconfig."""

    def __init__(
        self,
        workdir: Path | None = None,
        bin_dir: Path = BIN_DIR,
        controllers: tuple[str, ...] = CONTROLLERS,
        controller_manager_args: tuple[str, ...] = (),
        scheduler_args: tuple[str, ...] = (),
    ) -> None:
        """``controller_manager_args`` and ``scheduler_args`` are appended to those
        components' flags (e.g. ``--kube-api-qps``); the defaults leave them as shipped."""
        missing = missing_binaries(bin_dir)
        if missing:
            raise ControlPlaneError(
                f"{bin_dir}: missing {', '.join(missing)}; build them with "
                "`python -m realcluster build` (needs Go)"
            )
        self.bin_dir = bin_dir
        self.controllers = controllers
        self.controller_manager_args = controller_manager_args
        self.scheduler_args = scheduler_args
        self._kcm_argv: list[str] = []
        self._kcm_port = 0
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="realcluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        # Every request, Metadata level: what testcluster reads as request accounting.
        self.audit_log = self.workdir / "audit" / "audit.log"
        self.components: list[Component] = []
        self.server = ""
        self.startup_seconds = 0.0
        self._pki: Pki | None = None
        self._admin: KeyPair | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        started = time.monotonic()
        deadline = started + timeout
        atexit.register(self.stop)
        try:
            self._start(deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stops the components in reverse order of start; idempotent."""
        for component in reversed(self.components):
            component.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def dead(self) -> list[Component]:
        return [c for c in self.components if c.exited() is not None]

    # -- start-up --------------------------------------------------------------------------

    def _start(self, deadline: float) -> None:
        w = self.workdir
        pki = self._pki = Pki(w / "pki")
        serving = pki.server("kube-apiserver")
        admin = self._admin = pki.client("admin", "admin", ("system:masters",))
        kcm = pki.client("kube-controller-manager", "system:kube-controller-manager")
        scheduler = pki.client("kube-scheduler", "system:kube-scheduler")
        kubelet_client = pki.client(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
        )
        front_proxy = pki.client("front-proxy-client", "front-proxy-client")
        sa = pki.signing_key("service-account")
        etcd_client, etcd_peer, api_port, kcm_port, sched_port = free_ports(5)
        self.server = f"https://127.0.0.1:{api_port}"
        self._client_kubeconfig(self.kubeconfig, admin)
        kcm_kubeconfig = self._client_kubeconfig(w / "kube-controller-manager.kubeconfig", kcm)
        sched_kubeconfig = self._client_kubeconfig(w / "kube-scheduler.kubeconfig", scheduler)

        etcd_url = f"http://127.0.0.1:{etcd_client}"
        self._run(
            "etcd",
            f"--data-dir={w / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
        )
        self._run(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # On top of the defaults (PodSecurity, ServiceAccount, ...), as kubeadm does: a
            # node agent may touch only its own Node and the pods bound to it.
            "--enable-admission-plugins=NodeRestriction",
            # No kubernetes Endpoints to keep: nothing in the cluster dials the API server.
            "--endpoint-reconciler-type=none",
            # pods/log and exec reach a node agent at the address it registers.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            f"--cert-dir={w / 'apiserver-certs'}",
            *audit.apiserver_flags(self.audit_log.parent),
            # The aggregation layer's request-header authentication, as kubeadm sets it up;
            # without it every client of extension-apiserver-authentication logs errors.
            f"--requestheader-client-ca-file={pki.ca.cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={front_proxy.cert}",
            f"--proxy-client-key-file={front_proxy.key}",
            "--profiling=false",
        )
        admin_api = Api(self.server, pki.ca.cert, admin)
        self._wait(lambda: _ok(admin_api, "/readyz"), deadline, "kube-apiserver /readyz")

        self._kcm_port = kcm_port
        self._kcm_argv = [
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}",
            f"--authorization-kubeconfig={kcm_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            "--leader-elect=false",
            f"--service-account-private-key-file={sa.key}",
            f"--root-ca-file={pki.ca.cert}",
            # Each controller acts as its own ServiceAccount under the bootstrap RBAC roles,
            # as on kubeadm clusters: an RBAC gap shows up as a 403 in its log.
            "--use-service-account-credentials=true",
            "--profiling=false",
        ]
        self._run(
            "kube-controller-manager",
            *self._kcm_argv,
            f"--controllers={','.join(self.controllers)}",
            *self.controller_manager_args,
        )
        self._run(
            "kube-scheduler",
            f"--kubeconfig={sched_kubeconfig}",
            f"--authentication-kubeconfig={sched_kubeconfig}",
            f"--authorization-kubeconfig={sched_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
            "--leader-elect=false",
            "--profiling=false",
            *self.scheduler_args,
        )
        for name, port in (("kube-controller-manager", kcm_port), ("kube-scheduler", sched_port)):
            health = Api(f"https://127.0.0.1:{port}", None)
            self._wait(functools.partial(_ok, health, "/healthz"), deadline, f"{name} /healthz")
        # The ServiceAccount controller's first work proves the controller manager is wired.
        default_sa = "/api/v1/namespaces/default/serviceaccounts/default"
        self._wait(lambda: _ok(admin_api, default_sa), deadline, "ServiceAccount default/default")

    def restart_controller_manager(
        self,
        controllers: tuple[str, ...] | None = None,
        extra_args: tuple[str, ...] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Stops kube-controller-manager and starts it again with ``controllers`` and
        ``extra_args`` (None: as before), on the same port and identity; returns once it
        answers /healthz. Its log continues in the same file."""
        if not self._kcm_argv:
            raise ControlPlaneError("the control plane is not started")
        if controllers is not None:
            self.controllers = controllers
        if extra_args is not None:
            self.controller_manager_args = extra_args
        old = next(c for c in self.components if c.name == "kube-controller-manager")
        old.stop()
        self.components.remove(old)
        self._run(
            "kube-controller-manager",
            *self._kcm_argv,
            f"--controllers={','.join(self.controllers)}",
            *self.controller_manager_args,
        )
        health = Api(f"https://127.0.0.1:{self._kcm_port}", None)
        self._wait(
            functools.partial(_ok, health, "/healthz"),
            time.monotonic() + timeout,
            "kube-controller-manager /healthz",
        )

    def component(self, name: str) -> Component:
        """The running component named ``name`` (e.g. "kube-apiserver")."""
        for component in self.components:
            if component.name == name:
                return component
        raise ControlPlaneError(f"no component {name}")

    def _run(self, binary: str, *args: str) -> None:
        component = Component(
            binary, [str(self.bin_dir / binary), *args], self.workdir / "logs" / f"{binary}.log"
        )
        self.components.append(component)
        component.start()

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        """Polls ``ready()`` (a process coming up has no event to await) while watching that
        no component has died."""
        while True:
            for component in self.dead():
                raise ControlPlaneError(
                    f"{component.name} exited with status {component.exited()} while waiting "
                    f"for {what}; last lines of {component.log}:\n{component.log_tail()}"
                )
            with contextlib.suppress(OSError, ApiError):
                if ready():
                    return
            if time.monotonic() > deadline:
                tails = "\n".join(
                    f"--- {c.name} ({c.log}):\n{c.log_tail(15)}" for c in self.components
                )
                raise ControlPlaneError(f"timed out waiting for {what}\n{tails}")
            time.sleep(0.1)

    # -- kubeconfigs -----------------------------------------------------------------------

    def write_kubeconfig(self, path: Path, user: dict[str, str], name: str = "realcluster") -> Path:
        """A kubeconfig for ``user`` (client-certificate-data/client-key-data, or token)."""
        if self._pki is None:
            raise ControlPlaneError("the control plane is not started")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "realcluster", "cluster": {
                "server": self.server, "certificate-authority-data": _b64(self._pki.ca.cert)}}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": "realcluster", "user": name}}],
            "current-context": name,
        }  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def _client_kubeconfig(self, path: Path, pair: KeyPair) -> Path:
        user = {"client-certificate-data": _b64(pair.cert), "client-key-data": _b64(pair.key)}
        return self.write_kubeconfig(path, user)

    def node_kubeconfig(self, node: str, path: Path | None = None) -> Path:
        """A kubeconfig for a node agent: user ``system:node:<node>`` in group
        ``system:nodes``, what the Node authorizer and NodeRestriction recognise."""
        if self._pki is None:
            raise ControlPlaneError("the control plane is not started")
        pair = self._pki.client(f"node-{node}", f"system:node:{node}", ("system:nodes",))
        return self._client_kubeconfig(path or self.workdir / f"node-{node}.kubeconfig", pair)

    @property
    def ca_file(self) -> Path:
        if self._pki is None:
            raise ControlPlaneError("the control plane is not started")
        return self._pki.ca.cert

    def admin_api(self) -> Api:
        if self._admin is None:
            raise ControlPlaneError("the control plane is not started")
        return Api(self.server, self.ca_file, self._admin)


def _ok(api: Api, path: str) -> bool:
    return api.raw("GET", path, timeout=2)[0] == 200


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
