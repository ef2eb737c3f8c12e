"""The plugin starts fast: its common commands never import the API's models.

Guarded by what is imported, not by timing (docs/cli.md has the measured times): pydantic
and the models take most of a second to import, and nothing the plugin does needs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from cli_helpers import Kubectl

# Run in a fresh interpreter; the modules loaded are written to stderr at exit.
PROBE = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
sys.argv = ["kubectl-taskrun", *json.loads(sys.argv[1])]
from taskrun.cli.main import entry
entry()
"""
MODELS = (
    "pydantic",
    "pydantic_core",
    "taskrun.api.errors",
    "taskrun.api.k8s",
    "taskrun.api.resource",
    "taskrun.api.spec",
    "taskrun.api.status",
)


def loaded(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    """Exit code, stdout and the modules a fresh `kubectl-taskrun ARGS` imported."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    marker = proc.stderr.rindex("\nMODULES ")
    modules = json.loads(proc.stderr[marker + len("\nMODULES ") :])
    return proc.returncode, proc.stdout, set(modules)


def heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in names or m in names)


@pytest.mark.parametrize("args", [["--help"], ["list", "--help"], ["run", "--help"]])
def test_help_imports_neither_the_models_nor_yaml(args: list[str]) -> None:
    code, out, modules = loaded(args)
    assert (code, "usage:" in out) == (0, True)
    assert heavy(modules, (*MODELS, "yaml")) == []


def test_reading_commands_import_no_model(kubectl: Kubectl, runs: Any) -> None:
    runs.create("quick", scenario={})
    runs.wait_finished("quick")
    env = {"KUBECONFIG": str(kubectl.kubeconfig)}
    for args in (["list"], ["list", "-o", "json"], ["describe", "quick"], ["wait", "quick"]):
        code, out, modules = loaded(args, env)
        assert code == 0, (args, out)
        assert "quick" in out
        assert heavy(modules, MODELS) == [], args


def test_the_probe_sees_the_models_when_they_are_imported() -> None:
    # The guard must be able to fail: an entry point that touches a model is seen.
    probe = PROBE.replace("entry()", "import taskrun.api\ntaskrun.api.TaskRunSpec\nentry()")
    proc = subprocess.run(
        [sys.executable, "-c", probe, '["--help"]'], capture_output=True, text=True, timeout=60
    )
    marker = proc.stderr.rindex("\nMODULES ")
    modules = set(json.loads(proc.stderr[marker + len("\nMODULES ") :]))
    assert heavy(modules, MODELS) != []
