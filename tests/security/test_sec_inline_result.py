"""Issue 13, item 9: a result is the file's bytes on every hand-over path, or ResultInvalid.

An inline result (the sidecar's termination message) passes through the kubelet's JSON
status write, which replaces bytes that are not UTF-8 with U+FFFD: a run used to end
Succeeded with a result that was not the file. Every hand-over now carries the file's size
and sha256 (inline, log, exec) and the controller checks them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.pod import NATIVE_XCOM_SCRIPT, inline_header_bytes, inline_result_limit
from controller.core.results import LogHandOver, Result, decode, from_exec, from_log
from controller.handlers import Controller
from devcluster.kubelet import POD_TERMINATION_MESSAGES_MAX, termination_message
from taskrun.api import Reason
from testcluster import Cluster
from tests.integration.conftest import Runs, run_controller

RESULT = "/airflow/xcom/return.json"
CAP = 1024 * 1024
NOT_UTF8 = b'{"name": "caf\xe9"}'  # Latin-1, as a careless writer leaves it


def kubelet_status(message: bytes, containers: int = 2) -> str:
    """The termination message as the API returns it: capped and made valid UTF-8."""
    budget = POD_TERMINATION_MESSAGES_MAX // containers
    return termination_message(
        message, policy="File", failed=False, log_tail=lambda: b"", budget=budget
    )


def hand_over(data: bytes, inline_max: int = 4000) -> Result:
    """The sidecar's contract as devcluster's kubelet runs it, then the controller's decode."""
    if len(data) <= inline_max and data:
        digest = hashlib.sha256(data).hexdigest()
        message = f"inline:{len(data)}:{digest}:".encode() + data
    elif data:
        message = f"log:{len(data)}:{hashlib.sha256(data).hexdigest()}".encode()
    else:
        message = b"none"
    decoded = decode(kubelet_status(message), CAP)
    if isinstance(decoded, LogHandOver):
        return from_log(data, decoded, CAP)
    return decoded


def exec_output(data: bytes) -> bytes:
    """What the exec read command prints: wc -c, sha256sum, then the file."""
    digest = hashlib.sha256(data).hexdigest()
    return f"{len(data)} {RESULT}\n{digest}  {RESULT}\n".encode() + data


def accepted_only_if_exact(result: Result, data: bytes) -> None:
    if result.ok and result.text is not None:
        assert result.text.encode() == data
    elif data:
        assert result.reason in (Reason.RESULT_INVALID, Reason.RESULT_TOO_LARGE)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=5000), st.text(max_size=200).map(str.encode)))
def test_no_path_accepts_what_is_not_the_files_bytes(data: bytes) -> None:
    accepted_only_if_exact(hand_over(data), data)
    accepted_only_if_exact(from_exec(exec_output(data), CAP), data)


@pytest.mark.parametrize("size", [len(NOT_UTF8), 5000])
def test_not_utf8_is_result_invalid_inline_and_in_the_log(size: int) -> None:
    data = NOT_UTF8 + b" " * (size - len(NOT_UTF8))
    result = hand_over(data)
    assert result.reason == Reason.RESULT_INVALID


def test_a_cut_exec_read_is_result_invalid() -> None:
    data = json.dumps({"k": "v" * 100}).encode()
    result = from_exec(exec_output(data)[:-10], CAP)
    assert result.reason == Reason.RESULT_INVALID
    assert "cut or altered" in (result.message or "")


def test_an_unverifiable_inline_hand_over_is_refused() -> None:
    result = decode('inline:{"a": 1}', CAP)
    assert isinstance(result, Result)
    assert result.reason == Reason.RESULT_INVALID


@pytest.mark.parametrize("containers", range(1, 40))
def test_the_largest_inline_hand_over_fits_the_kubelets_budget(containers: int) -> None:
    limit = inline_result_limit(containers)
    per_container = min(4096, POD_TERMINATION_MESSAGES_MAX // containers)
    if limit:
        assert inline_header_bytes(limit) + limit <= per_container
        # and nothing is wasted: one byte more would not fit
        assert limit == 4000 or inline_header_bytes(limit + 1) + limit + 1 > per_container


# --- the real script under a real shell, through the kubelet's status write ------------------

SHELLS = sorted(
    {
        os.path.realpath(p)
        for p in ["/bin/sh", shutil.which("busybox") or ""]
        if p and Path(p).exists()
    }
)


def run_script(tmp_path: Path, content: bytes, shell: str) -> tuple[bytes, bytes]:
    result, message = tmp_path / "return.json", tmp_path / "termination-log"
    result.write_bytes(content)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TASKRUN_XCOM_RESULT_FILE": str(result),
        "TASKRUN_XCOM_TERMINATION_LOG": str(message),
    }
    argv = (
        [shell, "sh", "-c", NATIVE_XCOM_SCRIPT]
        if shell.endswith("busybox")
        else [shell, "-c", NATIVE_XCOM_SCRIPT]
    )
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        while time.monotonic() < deadline and not children.read_text().split():
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return stdout, message.read_bytes()


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("content", "ok"),
    [(b'{"a": 1}', True), ('{"ü": "✓"}'.encode(), True), (NOT_UTF8, False), (b'"\xc3"', False)],
)
def test_the_sidecar_script_sends_what_the_controller_verifies(
    tmp_path: Path, shell: str, content: bytes, ok: bool
) -> None:
    stdout, message = run_script(tmp_path, content, shell)
    assert stdout == b""
    result = decode(kubelet_status(message), CAP)
    assert isinstance(result, Result)
    if ok:
        assert result.ok and result.text is not None and result.text.encode() == content
    else:
        assert result.reason == Reason.RESULT_INVALID


# --- end to end against devcluster: inline, log and exec ------------------------------------


@pytest.fixture
def native(cluster: Cluster) -> Iterator[Controller]:
    # Per test, not per module: a native controller still running beside the exec-mode test's
    # own (both watch all namespaces) raced it for the run, and when it made the pod first
    # the sidecar exited on its own and the run ended Succeeded (seen on the real cluster).
    with run_controller(cluster, xcom_mode="native") as running:
        yield running


def _file(data: bytes) -> dict[str, str]:
    return {"base64": base64.b64encode(data).decode()}


@pytest.mark.parametrize("padding", [0, 6000], ids=["inline", "log"])
def test_a_result_that_is_not_utf8_ends_result_invalid(
    runs: Runs, native: Controller, padding: int
) -> None:
    data = NOT_UTF8 + b" " * padding
    runs.create("latin1", {"files": {RESULT: _file(data)}, "runSeconds": 0.05}, doXcomPush=True)
    status = runs.wait_finished("latin1")
    assert (status["phase"], status["reason"]) == ("Failed", "ResultInvalid"), status
    assert "result" not in status


def test_a_valid_inline_result_still_arrives_byte_for_byte(runs: Runs, native: Controller) -> None:
    data = '{"name": "café", "sep": "\u2028"}'.encode()
    runs.create("utf8", {"files": {RESULT: _file(data)}, "runSeconds": 0.05}, doXcomPush=True)
    status = runs.wait_finished("utf8")
    assert status["phase"] == "Succeeded", status
    assert status["result"].encode() == data


def test_exec_mode_refuses_a_result_that_is_not_utf8(cluster: Cluster, runs: Runs) -> None:
    # The extra grant docs/operations.md tells exec-mode users to add in their overlay.
    rule = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]}
    cluster.grant_controller("taskrun-controller-exec", [rule])
    with run_controller(cluster, xcom_mode="exec"):
        runs.create(
            "latin1", {"files": {RESULT: _file(NOT_UTF8)}, "runSeconds": 0.05}, doXcomPush=True
        )
        status = runs.wait_finished("latin1")
    assert (status["phase"], status["reason"]) == ("Failed", "ResultInvalid"), status
