"""``python -m realcluster build`` | ``python -m realcluster up --kubeconfig PATH``."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from devcluster.node import NODE_NAME, AgentProcess
from realcluster.build import BIN_DIR, build
from realcluster.controlplane import START_TIMEOUT, ControlPlane, ControlPlaneError
from realcluster.realnode import NodeError, RealNode, why_no_node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help=f"build etcd and the Kubernetes binaries into {BIN_DIR}")
    up = commands.add_parser("up", help="run a control plane until Ctrl-C or SIGTERM")
    up.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write the admin kubeconfig"
    )
    up.add_argument(
        "--dir",
        type=Path,
        help="working directory, kept afterwards (default: a temporary one, removed)",
    )
    up.add_argument(
        "--timeout", type=float, default=START_TIMEOUT, help="seconds to wait for readiness"
    )
    up.add_argument(
        "--no-node",
        action="store_true",
        help=f"no node agent (by default node {NODE_NAME}, devcluster's kubelet, runs pods)",
    )
    up.add_argument(
        "--real-node",
        action="store_true",
        help="a real node instead of the agent (containerd, runc, kubelet; docs/realnode.md; root)",
    )
    args = parser.parse_args(argv)  # fmt: skip

    if args.command == "build":
        try:
            seconds = build()
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"realcluster build: {exc}", file=sys.stderr)
            return 1
        print(f"realcluster: binaries in {BIN_DIR} ({seconds:.1f} s)", file=sys.stderr)
        return 0
    return _up(
        args.kubeconfig.resolve(),
        args.dir,
        args.timeout,
        with_node=not args.no_node and not args.real_node,
        real_node=args.real_node,
    )


def _up(
    kubeconfig: Path,
    workdir: Path | None,
    timeout: float,
    *,
    with_node: bool = True,
    real_node: bool = False,
) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # During start-up nothing waits on `stop`: unwind start() so that it stops what it began.
        if not ready.is_set():
            raise KeyboardInterrupt

    ready = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if real_node and (reason := why_no_node()):
        print(f"realcluster: no real node here: {reason}", file=sys.stderr)
        return 1
    try:
        plane = ControlPlane(workdir=workdir)
    except ControlPlaneError as exc:
        print(f"realcluster: {exc}", file=sys.stderr)
        return 1
    real: RealNode | None = None
    print(f"realcluster: starting in {plane.workdir}", file=sys.stderr, flush=True)
    node: AgentProcess | None = None
    try:
        plane.start(timeout)
        ready.set()
        shutil.copyfile(plane.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)
        if with_node:
            # The node agent (devcluster's kubelet as a node) runs pods; it stops in the
            # `finally` below, before the control plane.
            node = AgentProcess(
                kubeconfig, name=NODE_NAME, log_path=plane.workdir / "logs" / "node-agent.log"
            ).start()
            print(f"realcluster: node {NODE_NAME} at {node.endpoint}", file=sys.stderr)
        if real_node:
            real = RealNode(plane, workdir=plane.workdir / "node")
            real.start()
            print(
                f"realcluster: Node {real.name} Ready in {real.startup_seconds:.1f} s "
                f"(snapshotter {real.snapshotter}; logs in {real.workdir})",
                file=sys.stderr,
                flush=True,
            )
        print(f"export KUBECONFIG={kubeconfig}", flush=True)
        print(
            f"realcluster: ready in {plane.startup_seconds:.1f} s at {plane.server}; "
            f"logs in {plane.workdir / 'logs'}; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            if real is not None and real.component and real.component.exited() is not None:
                print(
                    f"realcluster: the real node exited; kubelet.log:\n"
                    f"{real.log_tail('kubelet.log')}",
                    file=sys.stderr,
                )
                return 1
            for component in plane.dead():
                print(
                    f"realcluster: {component.name} exited ({component.exited()}); "
                    f"last lines of {component.log}:\n{component.log_tail()}",
                    file=sys.stderr,
                )
                return 1
            if node is not None and node.process is not None and node.process.poll() is not None:
                print(
                    f"realcluster: the node agent exited ({node.process.returncode}); "
                    f"its log: {node.log_path}",
                    file=sys.stderr,
                )
                return 1
        return 0
    except (ControlPlaneError, NodeError, RuntimeError) as exc:
        print(f"realcluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        # A second signal while stopping must not cut the stop short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if real is not None:
            real.stop()
        if node is not None:
            node.stop()
        plane.stop()
        print("realcluster: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
