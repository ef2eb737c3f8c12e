"""doXcomPush: the xcom volume and sidecar; the native sidecar's script run for real."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from controller.core.pod import (
    KPO_XCOM_CMD,
    NATIVE_XCOM_SCRIPT,
    build_pod,
    inline_result_limit,
)
from controller.core.podsettings import PodSettings
from taskrun.api import INLINE_RESULT_MAX_BYTES

META = {"name": "run", "namespace": "ns", "uid": "u"}
XCOM_MOUNT = {"name": "xcom", "mountPath": "/airflow/xcom"}


def xcom_pod(settings: PodSettings | None = None, **spec: Any) -> dict[str, Any]:
    tr = {"metadata": META, "spec": {"image": "img", "doXcomPush": True, **spec}}
    return build_pod(tr, 1, settings)


def test_no_sidecar_without_do_xcom_push() -> None:
    pod = build_pod({"metadata": META, "spec": {"image": "img"}}, 1)
    assert pod["spec"]["volumes"] == []
    assert pod["spec"]["initContainers"] == []
    assert len(pod["spec"]["containers"]) == 1


def test_xcom_volume_and_mount_are_inserted_first() -> None:
    pod = xcom_pod(
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
    )
    assert pod["spec"]["volumes"] == [
        {"name": "xcom", "emptyDir": {}},
        {"name": "data", "emptyDir": {}},
    ]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        XCOM_MOUNT,
        {"name": "data", "mountPath": "/data"},
    ]


def test_native_mode_sidecar_is_the_last_init_container_restarting_always() -> None:
    pod = xcom_pod(initContainers=[{"name": "setup", "image": "i"}])
    assert [c["name"] for c in pod["spec"]["containers"]] == ["base"]
    setup, sidecar = pod["spec"]["initContainers"]
    assert setup["name"] == "setup"
    assert sidecar == {
        "name": "airflow-xcom-sidecar",
        "image": "alpine:3.24.2",
        "command": ["sh", "-c", NATIVE_XCOM_SCRIPT],
        "restartPolicy": "Always",
        "volumeMounts": [XCOM_MOUNT],
        "resources": {"requests": {"cpu": "1m", "memory": "10Mi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        # three containers share the kubelet's 12 KiB: 4096 each, minus the header
        "env": [{"name": "TASKRUN_XCOM_INLINE_MAX", "value": "4000"}],
    }


@pytest.mark.parametrize(
    ("containers", "limit"),
    # 12 KiB / containers, at most 4096, less "inline:<size>:<sha256>:" (77 bytes at 4 digits)
    [(1, 4000), (2, 4000), (3, 4000), (4, 2995), (5, 2380), (12, 948), (13000, 0)],
)
def test_inline_limit_follows_the_kubelets_message_budget(containers: int, limit: int) -> None:
    assert inline_result_limit(containers) == limit


def test_the_sidecar_is_told_its_budget_from_the_final_container_count() -> None:
    init = [{"name": f"i{n}", "image": "i"} for n in range(3)]
    pod = xcom_pod(initContainers=init)
    sidecar = pod["spec"]["initContainers"][-1]
    assert sidecar["env"] == [{"name": "TASKRUN_XCOM_INLINE_MAX", "value": "2380"}]


def test_exec_mode_sidecar_is_kpos_regular_container() -> None:
    pod = xcom_pod(PodSettings(xcom_mode="exec"))
    assert pod["spec"]["initContainers"] == []
    assert pod["spec"]["containers"][1] == {
        "name": "airflow-xcom-sidecar",
        "image": "alpine:3.24.2",
        "command": ["sh", "-c", 'trap "exit 0" INT; while true; do sleep 1; done;'],
        "volumeMounts": [XCOM_MOUNT],
        "resources": {"requests": {"cpu": "1m", "memory": "10Mi"}},
    }
    assert KPO_XCOM_CMD in pod["spec"]["containers"][1]["command"]


@pytest.mark.parametrize("mode", ["native", "exec"])
def test_sidecar_settings_are_honoured(mode: str) -> None:
    settings = PodSettings(
        xcom_mode=mode,  # type: ignore[arg-type]
        xcom_sidecar_image="registry.local/alpine:3",
        xcom_sidecar_resources={"limits": {"memory": "20Mi"}},
        xcom_sidecar_security_context={"runAsNonRoot": True, "runAsUser": 65534},
    )
    pod = xcom_pod(settings)
    everything = [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]
    (sidecar,) = [c for c in everything if c["name"] == "airflow-xcom-sidecar"]
    assert sidecar["image"] == "registry.local/alpine:3"
    assert sidecar["resources"] == {"limits": {"memory": "20Mi"}}
    assert sidecar["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65534}


def test_xcom_after_secrets_and_template() -> None:
    template = {"spec": {"volumes": [{"name": "t", "emptyDir": {}}]}}
    secret = {"deployType": "volume", "deployTarget": "/s", "secret": "s"}
    pod = xcom_pod(podTemplate=template, secrets=[secret])
    names = [v["name"] for v in pod["spec"]["volumes"]]
    assert names[:2] == ["xcom", "t"]
    assert names[2].startswith("secretvol")


# --- the native sidecar's script, run with /bin/sh ------------------------------------------


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


# Alpine's busybox ash runs it in pods; test every POSIX shell this machine has.
_FOUND = ["/bin/sh", *(shutil.which(n) or "" for n in ("dash", "bash", "busybox"))]
SHELLS = sorted({os.path.realpath(p) for p in _FOUND if p})


def run_hand_over(
    tmp_path: Path, content: bytes | None, shell: str = "/bin/sh", **extra_env: str
) -> tuple[bytes, bytes, int]:
    """Start the script, SIGTERM it like the kubelet does, return (stdout, message, code)."""
    result, message = tmp_path / "return.json", tmp_path / "termination-log"
    if content is not None:
        result.write_bytes(content)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TASKRUN_XCOM_RESULT_FILE": str(result),
        "TASKRUN_XCOM_TERMINATION_LOG": str(message),
        **extra_env,
    }
    proc = subprocess.Popen(
        [shell, "sh", "-c", NATIVE_XCOM_SCRIPT]
        if shell.endswith("busybox")
        else [shell, "-c", NATIVE_XCOM_SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The background sleep exists only after the trap is set: then SIGTERM is safe.
        deadline = time.monotonic() + 5
        while not _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not Path(f"/proc/{proc.pid}").exists():
            time.sleep(0.3)  # no procfs: give the shell time to set its trap
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stderr == b""
    return stdout, message.read_bytes(), proc.returncode


def inline(content: bytes) -> bytes:
    """The inline hand-over of ``content``: its size and sha256, then its bytes."""
    return f"inline:{len(content)}:{hashlib.sha256(content).hexdigest()}:".encode() + content


def json_of_size(size: int) -> bytes:
    """A valid JSON document of exactly ``size`` bytes, with multi-byte UTF-8 and newlines."""
    if size == 0:
        return b""
    head, tail = b'{"k": "\xc3\xa9\\n', b'"}\n'
    filler = size - len(head) - len(tail)
    assert filler >= 0
    body = (b"abcdefghij" * (filler // 10 + 1))[:filler]
    data = head + body + tail
    assert len(data) == size
    return data


@pytest.mark.parametrize("shell", SHELLS)
def test_missing_result_hands_over_none(tmp_path: Path, shell: str) -> None:
    assert run_hand_over(tmp_path, None, shell) == (b"", b"none", 0)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("size", [0, 10, INLINE_RESULT_MAX_BYTES])
def test_small_result_goes_inline_in_the_termination_message(
    tmp_path: Path, size: int, shell: str
) -> None:
    content = json_of_size(size) if size != 10 else b'{"a": 1}\n\n'
    assert len(content) == size
    stdout, message, code = run_hand_over(tmp_path, content, shell)
    assert code == 0
    assert stdout == b""
    assert message == (b"none" if size == 0 else inline(content))


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("size", [INLINE_RESULT_MAX_BYTES + 1, 500 * 1024])
def test_large_result_goes_to_the_log_with_size_and_digest(
    tmp_path: Path, size: int, shell: str
) -> None:
    content = json_of_size(size)
    stdout, message, code = run_hand_over(tmp_path, content, shell)
    assert code == 0
    assert stdout == content
    assert message == f"log:{size}:{hashlib.sha256(content).hexdigest()}".encode()


def test_termination_message_fits_the_kubelets_4096_bytes(tmp_path: Path) -> None:
    _, message, _ = run_hand_over(tmp_path, json_of_size(INLINE_RESULT_MAX_BYTES))
    assert len(message) <= 4096


def test_a_second_sigterm_does_not_repeat_the_hand_over(tmp_path: Path) -> None:
    content = json_of_size(200 * 1024)
    result, message = tmp_path / "return.json", tmp_path / "termination-log"
    result.write_bytes(content)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TASKRUN_XCOM_RESULT_FILE": str(result),
        "TASKRUN_XCOM_TERMINATION_LOG": str(message),
    }
    proc = subprocess.Popen(["/bin/sh", "-c", NATIVE_XCOM_SCRIPT], env=env, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while not _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        # Nobody reads stdout yet: the hand-over blocks in `cat` on the full pipe, and the
        # second SIGTERM lands in the middle of it.
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stdout == content
    assert (
        message.read_bytes() == f"log:{len(content)}:{hashlib.sha256(content).hexdigest()}".encode()
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_the_inline_budget_from_the_pod_builder_is_honoured(tmp_path: Path, shell: str) -> None:
    data = json_of_size(101)
    stdout, message, code = run_hand_over(tmp_path, data, shell, TASKRUN_XCOM_INLINE_MAX="100")
    assert (stdout, code) == (data, 0)
    assert message == f"log:101:{hashlib.sha256(data).hexdigest()}".encode()
    stdout, message, _ = run_hand_over(
        tmp_path, json_of_size(100), shell, TASKRUN_XCOM_INLINE_MAX="100"
    )
    assert (stdout, message) == (b"", inline(json_of_size(100)))
