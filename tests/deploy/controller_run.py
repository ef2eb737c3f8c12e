"""Running `python -m controller` against devcluster, for the tests in tests/deploy."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import DEPLOY, ROOT, kubectl, only, render
from rbac_check import Access

NAMESPACE = "rbac-proof"
SCENARIO = "devcluster.taskrun.dev/scenario"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def taskrun(name: str, scenario: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "image": "busybox:1.36",
            "cmds": ["sh", "-c", "true"],
            "annotations": {SCENARIO: json.dumps(scenario)},
            **spec,
        },
    }


def access_of(record: Any) -> Access | None:
    """The authorizer's view of one recorded request; None for discovery and other
    non-resource paths, which every authenticated user may read (system:discovery)."""
    resource = getattr(record, "resource", None)
    if not resource:
        return None
    return Access(
        verb=record.verb,
        group=getattr(record, "group", "") or "",
        resource=resource,
        subresource=getattr(record, "subresource", "") or "",
        namespace=getattr(record, "namespace", None) or None,
        name=getattr(record, "name", None) or None,
    )


def controller_accesses(records: list[Any]) -> list[Access]:
    out = []
    for record in records:
        agent = getattr(record, "user_agent", "") or ""
        if agent.startswith("kubectl"):  # the test's own requests
            continue
        access = access_of(record)
        if access is not None:
            out.append(access)
    return out


class Kubectl:
    def __init__(self, kubeconfig: str, cache: Path) -> None:
        self.base = [kubectl(), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}"]

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def controller_process(
    args: list[str], kubeconfig: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            yield proc
        except BaseException:
            sys.stderr.write(f"controller log:\n{log.read_text()[-6000:]}\n")
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def deployed_args(
    overlay: str, metrics_port: int, health_port: int, namespace: str = NAMESPACE
) -> list[str]:
    """An overlay's Deployment args, with the ports moved to free local ones and the
    pod's namespace (the downward API's $(POD_NAMESPACE)) set to the test namespace."""
    deployment = only(render(overlay), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {"--metrics-port": metrics_port, "--health-port": health_port}
    args = []
    for arg in container["args"]:
        name = arg.split("=", 1)[0]
        arg = f"{name}={ports[name]}" if name in ports else arg
        args.append(arg.replace("$(POD_NAMESPACE)", namespace))
    return args


@contextlib.contextmanager
def peered_devcluster() -> Iterator[Any]:
    """devcluster with the TaskRun CRD, kopf's peering CRDs, the ha overlay's
    ClusterKopfPeering and the test namespace: where the ha overlay's replicas run."""
    devcluster = pytest.importorskip("devcluster", reason="devcluster is not written yet")
    dc = devcluster.DevCluster()
    dc.start()
    try:
        dc.apply_file(ROOT / "crds" / "taskrun.yaml")
        dc.apply_file(DEPLOY / "kopf-peering" / "peering-crds.yaml")
        dc.apply_file(DEPLOY / "overlays" / "ha" / "peering.yaml")
        dc.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        yield dc
    finally:
        dc.stop()
