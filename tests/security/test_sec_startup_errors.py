"""Start-up errors are one line naming the flag and its value, then a non-zero exit.

The controller used to die with a Python traceback when its metrics port was taken; a bad
policy file printed the usage and a message that did not name the flag, and a kubeconfig
that could not be read was left to kopf's login, which retried it. Run as a user runs it:
``python -m controller`` in a process of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port another process (this test) listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def controller(tmp_path: Path, *args: str, kubeconfig: Path | str | None = None) -> tuple[int, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # no ~/.kube/config to fall back on
        "PYTHONPATH": str(ROOT),
    }
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    done = subprocess.run(
        [sys.executable, "-m", "controller", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stderr.decode()


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code != 0
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, err)


def test_a_taken_metrics_port_is_one_line(tmp_path: Path, kubeconfig: Path, listening: int) -> None:
    code, err = controller(
        tmp_path, "--metrics-port", str(listening), "--health-port", "0", kubeconfig=kubeconfig
    )
    assert_one_line(code, err, "--metrics-port", str(listening), "in use")


def test_a_taken_health_port_is_one_line(tmp_path: Path, kubeconfig: Path, listening: int) -> None:
    code, err = controller(
        tmp_path, "--metrics-port", "0", "--health-port", str(listening), kubeconfig=kubeconfig
    )
    assert_one_line(code, err, "--health-port", str(listening), "in use")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["No such file"]),
        ("default: [unclosed\n  - x: {", []),
        ("default:\n  allowPrivileged: maybe\n", []),
        ("- just\n- a list\n", []),
    ],
    ids=["missing", "not-yaml", "bad-value", "not-a-mapping"],
)
def test_a_bad_policy_file_is_one_line(
    tmp_path: Path, kubeconfig: Path, content: str | None, words: list[str]
) -> None:
    path = tmp_path / "policy.yaml"
    if content is not None:
        path.write_text(content)
    code, err = controller(tmp_path, "--security-policy", str(path), kubeconfig=kubeconfig)
    assert_one_line(code, err, "--security-policy", str(path), *words)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["no such file"]),
        ("just a string\n", ["not a kubeconfig"]),
        ("apiVersion: v1\nkind: Config\n", ["no current-context"]),
        ("current-context: gone\ncontexts: []\n", ["'gone'"]),
        ("a: [unclosed\n", []),
    ],
    ids=["missing", "not-a-mapping", "no-context", "unknown-context", "not-yaml"],
)
def test_an_unreadable_kubeconfig_is_one_line(
    tmp_path: Path, content: str | None, words: list[str]
) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(content)
    code, err = controller(tmp_path, "--metrics-port", "0", "--health-port", "0", kubeconfig=path)
    assert_one_line(code, err, "KUBECONFIG", str(path), *words)
    code, err = controller(
        tmp_path, "--metrics-port", "0", "--health-port", "0", "--kubeconfig", str(path)
    )
    assert_one_line(code, err, "--kubeconfig", str(path), *words)


def test_no_credentials_at_all_is_one_line(tmp_path: Path) -> None:
    code, err = controller(tmp_path, "--metrics-port", "0", "--health-port", "0")
    assert_one_line(code, err, "KUBECONFIG", "~/.kube/config")
