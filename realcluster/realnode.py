"""A real node: containerd, runc, the CNI plugins and a stock kubelet 1.37, registered with the
real control plane, running true containers.

The machine this project runs on has cgroup v1 (hybrid: every controller is on a v1
hierarchy, the cgroup2 mount has none), so the kubelet runs with ``failCgroupV1: false``
and the cgroupfs driver; its pods live under the v1 cgroup ``CGROUP_ROOT`` and nowhere
else. All node processes run in one private mount namespace (run-node.sh), which keeps
their mounts off the machine and fakes the kernel settings the kubelet wants to change.
The CNI bridge has no gateway and no masquerading: pods get an address on a bridge of
their own and reach nothing but each other, and the machine's sysctls and firewall are left
alone. See docs/realnode.md for what works, what the machine forbids and the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from realcluster.client import Api, ApiError
from realcluster.controlplane import ControlPlane
from realcluster.processes import Component, free_ports

NODE_DIR = Path(__file__).resolve().parent / "node"
BIN_DIR = Path(__file__).resolve().parent / "bin"
NODE_BINARIES = (
    "kubelet",
    "containerd",
    "ctr",
    "containerd-shim-runc-v2",
    "runc",
    "cni/bridge",
    "cni/host-local",
    "cni/loopback",
    "images/busybox.tar",
    "images/pause.tar",
)
NODE_NAME = "realnode"
CGROUP_ROOT = "taskrun-realnode"
BRIDGE = "trn0"
POD_SUBNET = "10.244.77.0/24"
# The kubelet refuses a loopback node IP ("nodeIP can't be loopback address"), and the API
# server reaches the kubelet at the Node's InternalIP: this address, put on `lo` while the
# node runs, is reachable from this machine only.
NODE_IP = "10.244.76.1"
BUSYBOX_IMAGE = "docker.io/taskrun/busybox:local"
PAUSE_IMAGE = "docker.io/taskrun/pause:local"
START_TIMEOUT = 120.0
V1_HIERARCHIES = Path("/sys/fs/cgroup")


class NodeError(RuntimeError):
    pass


def missing_node_binaries(bin_dir: Path = BIN_DIR) -> list[str]:
    return [name for name in NODE_BINARIES if not (bin_dir / name).exists()]


def why_no_node() -> str | None:
    """None when this machine can run the real node, else the reason in one line."""
    if os.geteuid() != 0:
        return "the real node needs root (containerd, runc, mounts, cgroups)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not on PATH"
    if not (V1_HIERARCHIES / "pids" / "cgroup.procs").exists():
        # The settings here are cgroup v1's, the only kind these machines have.
        return f"no cgroup v1 pids hierarchy at {V1_HIERARCHIES / 'pids'}"
    missing = missing_node_binaries()
    if missing:
        return f"{BIN_DIR}: missing {', '.join(missing)}; build with `make node-build`"
    return None


def snapshotter_for(directory: Path) -> str:
    """overlayfs when an overlay mount works on ``directory``'s file system, else native."""
    probe = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=directory))
    try:
        for sub in ("lower", "upper", "work", "merged"):
            (probe / sub).mkdir()
        opts = f"lowerdir={probe / 'lower'},upperdir={probe / 'upper'},workdir={probe / 'work'}"
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "mount", "-t", "overlay", "overlay",
             "-o", opts, str(probe / "merged")],
            capture_output=True, text=True,
        )  # fmt: skip
        return "overlayfs" if proc.returncode == 0 else "native"
    finally:
        shutil.rmtree(probe, ignore_errors=True)


class RealNode:
    """``with RealNode(plane) as node:`` starts containerd and the kubelet and waits
    until the Node is Ready; leaving stops them, kills every container and removes the
    cgroups, the bridge and the working directory (unless given)."""

    def __init__(
        self,
        plane: ControlPlane,
        workdir: Path | None = None,
        bin_dir: Path = BIN_DIR,
        name: str = NODE_NAME,
    ) -> None:
        missing = missing_node_binaries(bin_dir)
        if missing:
            raise NodeError(
                f"{bin_dir}: missing {', '.join(missing)}; build them with `make node-build`"
            )
        self.plane = plane
        self.bin_dir = bin_dir
        self.name = name
        self._own_workdir = workdir is None
        # Short: containerd's socket path must fit in sun_path (108 bytes).
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rn-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.component: Component | None = None
        self.kubelet_port = 0
        self.startup_seconds = 0.0
        self.snapshotter = ""

    def __enter__(self) -> RealNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        started = time.monotonic()
        busy = _cgroup_procs(V1_HIERARCHIES / "pids" / CGROUP_ROOT)
        if busy:
            # Cgroups, bridge and node address are per machine: a second node would share
            # them, and stopping either would kill both.
            raise NodeError(
                f"another real node runs on this machine (processes {sorted(busy)[:5]} in "
                f"cgroup pids:/{CGROUP_ROOT}); stop it first"
            )
        try:
            self._write_config()
            subprocess.run(["ip", "addr", "replace", f"{NODE_IP}/32", "dev", "lo"], check=True)
            self.component = Component(
                "realnode",
                ["unshare", "-m", "--propagation", "slave", "sh", str(NODE_DIR / "run-node.sh"),
                 str(self.workdir), str(self.bin_dir), CGROUP_ROOT],
                self.workdir / "run-node.log",
            )  # fmt: skip
            self.component.start()
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _write_config(self) -> None:
        w = self.workdir
        (self.kubelet_port,) = free_ports(1)
        self.snapshotter = snapshotter_for(w)
        (w / "snapshotter").write_text(self.snapshotter)
        (w / "nodename").write_text(self.name)
        (w / "nodeip").write_text(NODE_IP)
        images = w / "images"
        images.mkdir(exist_ok=True)
        for tar in ("busybox.tar", "pause.tar"):
            shutil.copyfile(self.bin_dir / "images" / tar, images / tar)
        cni_conf = w / "cni" / "net.d"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-realnode.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "realnode",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            # No gateway, no masquerade: the plugin then leaves the machine's
                            # ip_forward and iptables alone; pods need no route out.
                            "isGateway": False,
                            "ipMasq": False,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_SUBNET}]],
                                "dataDir": str(w / "cni" / "ipam"),
                            },
                        },
                        {"type": "loopback"},
                    ],
                },
                indent=1,
            )
        )
        (w / "containerd.toml").write_text(_containerd_toml(w, self.bin_dir, self.snapshotter))
        self.plane.node_kubeconfig(self.name, w / "kubelet.kubeconfig")
        (w / "kubelet.yaml").write_text(
            yaml.safe_dump(_kubelet_config(w, self.kubelet_port, self.plane.ca_file))
        )

    def _wait_ready(self, deadline: float) -> None:
        assert self.component is not None
        api = self.plane.admin_api()
        while True:
            status = self.component.exited()
            if status is not None:
                raise NodeError(
                    f"the node exited with status {status}; {self.component.log}:\n"
                    f"{self.component.log_tail()}\n--- kubelet.log:\n{self.log_tail('kubelet.log')}"
                    f"\n--- containerd.log:\n{self.log_tail('containerd.log')}"
                )
            with contextlib.suppress(OSError, ApiError):
                code, body = api.raw("GET", f"/api/v1/nodes/{self.name}", timeout=2)
                if code == 200:
                    node = json.loads(body)
                    for cond in node.get("status", {}).get("conditions", []):
                        if cond["type"] == "Ready" and cond["status"] == "True":
                            self._untaint(api, node)
                            return
            if time.monotonic() > deadline:
                raise NodeError(
                    f"Node {self.name} not Ready in time; --- kubelet.log:\n"
                    f"{self.log_tail('kubelet.log')}\n--- containerd.log:\n"
                    f"{self.log_tail('containerd.log')}"
                )
            time.sleep(0.2)

    def _untaint(self, api: Api, node: dict[str, Any]) -> None:
        """Removes the not-ready taint the kubelet registers with: the control plane runs no
        node-lifecycle controller, which would remove it once the Node is Ready. A PUT of
        the Node (the status half is ignored), again on a conflict with the kubelet's
        heartbeats."""
        path = f"/api/v1/nodes/{self.name}"
        for _ in range(20):
            taints = node.get("spec", {}).get("taints") or []
            kept = [t for t in taints if t.get("key") != "node.kubernetes.io/not-ready"]
            if kept == taints:
                return
            node["spec"]["taints"] = kept
            try:
                api.call("PUT", path, node)
                return
            except ApiError as exc:
                if exc.status != 409:
                    raise
            node = api.call("GET", path)
        raise NodeError(f"could not remove the not-ready taint of Node {self.name}")

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            text = (self.workdir / name).read_text(errors="replace")
        except OSError:
            return f"(no {name})"
        return "\n".join(text.splitlines()[-lines:])

    # -- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops the kubelet and containerd, then kills whatever the node left (shims and
        containers, found through the node's pids cgroup) and removes its cgroups and
        bridge; idempotent."""
        if self.component is not None:
            self.component.stop()
        _kill_cgroup_tree(V1_HIERARCHIES / "pids" / CGROUP_ROOT)
        _remove_cgroups(CGROUP_ROOT)
        with contextlib.suppress(OSError):
            subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
            subprocess.run(["ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo"], capture_output=True)
        # Mounts die with the namespace; overlay snapshots may hold busy files for a moment.
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _cgroup_dirs(root: Path) -> list[Path]:
    """The cgroup directories under ``root``, deepest first; cgroups that vanish while
    being listed (runc removing a container's) are skipped."""
    found = [Path(d) for d, _, _ in os.walk(root, onerror=lambda _: None)]
    return sorted(found, key=lambda p: -len(p.parts))


def _cgroup_procs(root: Path) -> set[int]:
    pids: set[int] = set()
    for d in _cgroup_dirs(root):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
    return pids


def _kill_cgroup_tree(root: Path, timeout: float = 10.0) -> None:
    """SIGKILL to every process in the v1 cgroup tree ``root`` (the node's own processes:
    the daemons' cgroup and the pods'), until it is empty."""
    deadline = time.monotonic() + timeout
    while pids := _cgroup_procs(root):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise NodeError(f"processes {sorted(pids)} of cgroup {root} did not die")
        time.sleep(0.05)


def _remove_cgroups(name: str) -> None:
    for hierarchy in V1_HIERARCHIES.iterdir():
        for d in _cgroup_dirs(hierarchy / name):
            with contextlib.suppress(OSError):
                d.rmdir()


def _kubelet_config(w: Path, port: int, ca: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine has cgroup v1 only (see the module docstring).
        "failCgroupV1": False,
        "failSwapOn": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "containerRuntimeEndpoint": f"unix://{w / 'containerd' / 'containerd.sock'}",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        # The API server's kubelet client certificate is signed by the cluster CA; loopback only.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # The fake /proc/sys files of run-node.sh already hold what the kubelet wants; an
        # error here is better than a write that could reach the machine.
        "protectKernelDefaults": True,
        "podLogsDir": str(w / "pod-logs"),
        "registerNode": True,
        # The machine's disk is shared: never evict or collect images for disk pressure.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "resolvConf": "",
        # No DNS runs here; without any clusterDNS the kubelet posts a MissingClusterDNS
        # Warning for every pod, which TaskRun status would carry as a warning.
        "clusterDNS": ["10.0.0.10"],
        "clusterDomain": "cluster.local",
        "serializeImagePulls": False,
        "nodeStatusUpdateFrequency": "2s",
        "syncFrequency": "5s",
        "fileCheckFrequency": "5s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
    }


def _containerd_toml(w: Path, bin_dir: Path, snapshotter: str) -> str:
    c = w / "containerd"
    return f"""\
version = 3
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{c / "containerd.sock"}"
[ttrpc]
  address = "{c / "containerd.sock.ttrpc"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "{snapshotter}"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"
[plugins."io.containerd.cri.v1.runtime"]
  # The machine's bounding set lacks CAP_SYS_RESOURCE, so no process may lower its
  # oom_score_adj (runc init: "failed to update /proc/self/oom_score_adj: Permission
  # denied" for the sandbox's -998): clamp every request to containerd's own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      snapshotter = "{snapshotter}"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{bin_dir / "runc"}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{bin_dir / "cni"}"]
    conf_dir = "{w / "cni" / "net.d"}"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""
