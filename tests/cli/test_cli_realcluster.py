"""`kubectl taskrun` against a real cluster with the controller installed (kind, a cloud
cluster, the realcluster rung): TASKRUN_REAL_CLUSTER=1 and KUBECONFIG pointing at it.

Real containers, so the commands do what they say: no devcluster scenario annotations.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.realcluster,
    pytest.mark.skipif(
        os.environ.get("TASKRUN_REAL_CLUSTER") != "1" or not os.environ.get("KUBECONFIG"),
        reason="needs TASKRUN_REAL_CLUSTER=1 and KUBECONFIG pointing at a real cluster",
    ),
]

BIN = Path(sys.executable).parent
NAMESPACE = os.environ.get("TASKRUN_TEST_NAMESPACE", "default")


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    binary = shutil.which("kubectl", path=env["PATH"]) or "kubectl"
    return subprocess.run(
        [binary, "taskrun", "-n", NAMESPACE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_run_streams_the_real_log_and_exits_with_the_task_code() -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    done = kubectl(
        "run", name, "--image", "busybox:1.36", "--rm", "--",
        "sh", "-c", "echo hello from a container; exit 3",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "hello from a container" in done.stdout


def test_result_of_a_real_run() -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    script = "mkdir -p /airflow/xcom; echo '{\"n\": 1}' > /airflow/xcom/return.json"
    done = kubectl("run", name, "--image", "busybox:1.36", "--xcom", "-q", "--", "sh", "-c", script)
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == '{"n": 1}'
        assert kubectl("result", name).stdout.strip() == '{"n": 1}'
    finally:
        kubectl("delete", name)
