"""``--node`` and the ``simulated_node_only`` marker, in a pytest run of their own (the
marker acts at collection, so no cluster starts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKED = """\
import pytest

@pytest.mark.simulated_node_only("plays a scenario")
def test_marked():
    pass
"""


@pytest.mark.parametrize(
    ("args", "outcome"),
    [
        ([], "1 passed"),
        (["--cluster=real"], "1 passed"),
        (["--cluster=real", "--node=agent"], "1 passed"),
        (["--cluster=real", "--node=real"], "SKIPPED [1] test_marked.py:3: simulated node only: "
         "plays a scenario"),
        (["--cluster=kubeconfig"], "simulated node only: plays a scenario"),
        (["--node=real"], "--node=real needs --cluster=real, not --cluster=devcluster"),
    ],
)  # fmt: skip
def test_simulated_node_only(tmp_path: Path, args: list[str], outcome: str) -> None:
    (tmp_path / "test_marked.py").write_text(MARKED)
    argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
            "-p", "testcluster.pytest_plugin", "test_marked.py", *args]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRUN_TEST_")}
    env["PYTHONPATH"] = str(ROOT)  # testcluster is not an installed package
    run = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert outcome in run.stdout + run.stderr, run.stdout + run.stderr
