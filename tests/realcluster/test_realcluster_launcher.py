"""`python -m realcluster up`: ready, usable, and gone without a trace on SIGTERM, on SIGINT
during start-up, and when the launcher itself is killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_kubectl import Kubectl

from realcluster import ControlPlane, ControlPlaneError
from realcluster.pytest_plugin import unavailable

pytestmark = [
    pytest.mark.realcluster,
    pytest.mark.timeout(300),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]


def processes_mentioning(text: str) -> dict[int, str]:
    """Every process whose command line mentions ``text`` (each component's does: its
    certificates, data and kubeconfigs live in the working directory)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found[int(entry.name)] = argv
    return found


def wait_until_none_left(workdir: Path, timeout: float = 30.0) -> None:
    # Process exit of someone else's children has no event to await here: poll /proc.
    deadline = time.monotonic() + timeout
    while left := processes_mentioning(str(workdir)):
        assert time.monotonic() < deadline, f"processes left behind: {left}"
        time.sleep(0.1)


class Launcher:
    def __init__(self, tmp_path: Path) -> None:
        # Every process of the cluster mentions this directory: the components their working
        # directory, the node agent its kubeconfig.
        self.root = tmp_path
        self.workdir = tmp_path / "plane"
        self.kubeconfig = tmp_path / "kubeconfig"
        self.stderr = tmp_path / "launcher.stderr"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "realcluster", "up", "--kubeconfig", str(self.kubeconfig),
                 "--dir", str(self.workdir)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )  # fmt: skip

    def wait_ready(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("export KUBECONFIG="), (line, self.stderr.read_text())
        return line

    def components(self) -> dict[int, str]:
        found = processes_mentioning(str(self.workdir))
        found.pop(self.proc.pid, None)
        return found

    def wait_for_apiserver_process(self) -> None:
        deadline = time.monotonic() + 60
        while not any("kube-apiserver" in argv for argv in self.components().values()):
            assert self.proc.poll() is None, self.stderr.read_text()
            assert time.monotonic() < deadline, self.stderr.read_text()
            time.sleep(0.05)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        if launcher.proc.poll() is None:
            launcher.proc.kill()
        launcher.proc.wait()
        for pid in processes_mentioning(str(launcher.root)):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(launcher.workdir / "etcd", ignore_errors=True)  # a 64 MB WAL


def test_up_serves_and_sigterm_leaves_nothing(launcher: Launcher, tmp_path: Path) -> None:
    assert launcher.wait_ready() == f"export KUBECONFIG={launcher.kubeconfig}\n"
    names = {argv.split()[0].rsplit("/", 1)[-1] for argv in launcher.components().values()}
    assert names == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    kubectl = Kubectl(launcher.kubeconfig, tmp_path / "cache", "default")
    assert "serviceaccount/default" in kubectl.run("get", "serviceaccounts", "-o", "name")

    launcher.proc.send_signal(signal.SIGTERM)
    assert launcher.proc.wait(60) == 0, launcher.stderr.read_text()
    assert processes_mentioning(str(launcher.root)) == {}
    assert "realcluster: stopped" in launcher.stderr.read_text()


def test_sigint_during_start_up_leaves_nothing(launcher: Launcher) -> None:
    launcher.wait_for_apiserver_process()
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.proc.wait(60) == 130, launcher.stderr.read_text()
    assert processes_mentioning(str(launcher.root)) == {}


def test_components_die_with_a_killed_launcher(launcher: Launcher) -> None:
    launcher.wait_ready()
    assert len(launcher.components()) == 4
    assert any(
        "devcluster.node" in argv for argv in processes_mentioning(str(launcher.root)).values()
    )
    launcher.proc.kill()  # no chance to clean up: the kernel's parent-death signal must act
    launcher.proc.wait()
    wait_until_none_left(launcher.root)


def test_a_component_failing_at_start_up_is_named_with_its_log(tmp_path: Path) -> None:
    workdir = tmp_path / "plane"
    plane = ControlPlane(workdir=workdir, controllers=("no-such-controller",))
    with pytest.raises(ControlPlaneError) as failure:
        plane.start()
    message = str(failure.value)
    assert message.startswith("kube-controller-manager exited with status 1"), message
    assert "no-such-controller" in message.split("last lines of", 1)[1]
    assert processes_mentioning(str(workdir)) == {}
    shutil.rmtree(workdir / "etcd", ignore_errors=True)
