"""Helpers of the plugin's tests: the real kubectl (plugin discovery on the PATH) against
devcluster and the real controller (the integration suite's runner, loaded by path)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("taskrun_tests_integration_conftest", _path)
assert _spec is not None and _spec.loader is not None
integration = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = integration  # dataclasses look their module up there
    _spec.loader.exec_module(integration)

BIN = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl", path=str(BIN))
SCENARIO = integration.SCENARIO


@dataclass
class Result:
    args: list[str]
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


@dataclass
class Kubectl:
    """Runs `kubectl ...` as a user would, with KUBECONFIG pointing at a test namespace."""

    kubeconfig: Path
    namespace: str
    transcript: list[tuple[str, str, int]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONUNBUFFERED": "1",
        }

    def __call__(
        self, *args: str, code: int | None = 0, stdin: str | None = None, record: bool = False
    ) -> Result:
        """Run kubectl; ``record`` merges stderr into stdout, as a terminal shows them, and
        adds the command to the transcript."""
        proc = subprocess.run(
            [str(KUBECTL), *args],
            env=self.env(),
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if record else subprocess.PIPE,
            text=True,
            timeout=60,
        )
        result = Result(list(args), proc.returncode, proc.stdout, proc.stderr or "")
        if code is not None:
            assert proc.returncode == code, (
                f"kubectl {shlex.join(args)} exited {proc.returncode}, expected {code}:\n"
                f"{proc.stdout}{proc.stderr or ''}"
            )
        if record:
            self.transcript.append((shlex.join(args), proc.stdout, proc.returncode))
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(KUBECTL), *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
