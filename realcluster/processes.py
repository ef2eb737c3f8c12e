"""Child processes that cannot outlive the launcher.

Each component runs in a session (and so a process group) of its own, so a terminal's Ctrl-C
reaches only the launcher, which then stops the components in order. ``setpriv --pdeathsig
KILL`` (util-linux) makes the kernel kill a component when the launcher dies without cleaning
up (SIGKILL, a crash). The kernel ties that signal to the *thread* that forked the child:
start components from a thread that lives as long as the control plane (pytest's main thread
does)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

STOP_TIMEOUT = 10.0


class Component:
    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise RuntimeError("setpriv (util-linux) is not on PATH: it ties components to us")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [setpriv, "--pdeathsig", "KILL", "--", *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exited(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return self.proc.poll() if self.proc else None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the process group, then SIGKILL after ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # Anything else left in the group (none of these binaries forks, but be sure).
        _signal_group(self.proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log})"
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all distinct (the sockets stay open until all are picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports
