"""Builds the control plane's binaries with Go: the stock commands of k8s.io/kubernetes at the
version go.mod pins, stamped so that /version and kubectl's skew checks see that version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent
BIN_DIR = MODULE_DIR / "bin"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
PACKAGES = (
    "k8s.io/kubernetes/cmd/kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager",
    "k8s.io/kubernetes/cmd/kube-scheduler",
    "./etcd",
)
# A fixed build date keeps the link inputs, and so Go's up-to-date check, stable.
BUILD_DATE = "2026-12-01T00:00:00Z"


def _pinned_version() -> str:
    """k8s.io/kubernetes's version from go.mod: the one source of the version stamp."""
    text = (MODULE_DIR / "go.mod").read_text()
    found = re.search(r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+)\b", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"{MODULE_DIR / 'go.mod'}: no requirement of k8s.io/kubernetes")
    return found.group(1)


KUBERNETES_VERSION = _pinned_version()


def ldflags(version: str = KUBERNETES_VERSION) -> str:
    major, minor, _ = version.lstrip("v").split(".")
    stamp = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": BUILD_DATE,
    }
    flags = [f"-X k8s.io/component-base/version.{k}={v}" for k, v in stamp.items()]
    return " ".join([*flags, "-s", "-w"])


def missing_binaries(bin_dir: Path = BIN_DIR) -> list[str]:
    return [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]


def build(bin_dir: Path = BIN_DIR) -> float:
    """Runs ``go build`` for the four binaries; returns its wall time in seconds. Go's build
    cache makes a second build relink nothing when no input changed."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("go is not on PATH: the real control plane is built with Go 1.26+")
    bin_dir.mkdir(parents=True, exist_ok=True)
    # VCS stamping would fail in a worktree or tarball and would change the binaries with
    # every commit; the version comes from -ldflags instead.
    env = {**os.environ, "GOFLAGS": "-buildvcs=false"}
    cmd = [go, "build", "-trimpath", "-ldflags", ldflags(), "-o", f"{bin_dir}/", *PACKAGES]
    started = time.monotonic()
    subprocess.run(cmd, cwd=MODULE_DIR, env=env, check=True)
    return time.monotonic() - started
