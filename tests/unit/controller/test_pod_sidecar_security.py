"""The result sidecar's securityContext: Restricted, as the base container's user, when the
base container must run as non-root; KPO's (none) otherwise (docs/security.md). And a
result file the sidecar's user may not read ends the run with a message that says so."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core.pod import NATIVE_XCOM_SCRIPT, SIDECAR_NON_ROOT_UID, build_pod
from controller.core.podsettings import PodSettings
from controller.core.results import EXEC_READ_COMMAND, Result, decode, from_exec
from taskrun.api import XCOM_RESULT_PATH, XCOM_SIDECAR_NAME, Reason

META = {"name": "run", "namespace": "ns", "uid": "u"}
HARDENED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
RUNTIME_DEFAULT = {"seccompProfile": {"type": "RuntimeDefault"}}


def sidecar_of(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod["spec"]
    (sidecar,) = [
        c for c in [*spec["initContainers"], *spec["containers"]] if c["name"] == XCOM_SIDECAR_NAME
    ]
    return dict(sidecar)


def build(mode: str = "native", settings: PodSettings | None = None, **spec: Any) -> Any:
    settings = settings or PodSettings(xcom_mode=mode)  # type: ignore[arg-type]
    tr = {"metadata": META, "spec": {"image": "img", "doXcomPush": True, **spec}}
    return build_pod(tr, 1, settings)


CASES = [
    pytest.param({}, None, id="no-context-stays-kpos"),
    pytest.param(
        {"securityContext": {"runAsUser": 1000, "fsGroup": 2000}},
        None,
        id="a-user-without-runAsNonRoot-stays-kpos",
    ),
    pytest.param(
        {"containerSecurityContext": {"allowPrivilegeEscalation": False}},
        None,
        id="a-hardened-root-base-stays-kpos",
    ),
    pytest.param(
        {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000}},
        {**HARDENED, **RUNTIME_DEFAULT},
        id="pod-user-is-inherited",
    ),
    pytest.param(
        {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containerSecurityContext": {"runAsUser": 2000, "runAsGroup": 3000},
        },
        {**HARDENED, "runAsUser": 2000, "runAsGroup": 3000, **RUNTIME_DEFAULT},
        id="base-container-user-and-group-are-copied",
    ),
    pytest.param(
        {"containerSecurityContext": {"runAsNonRoot": True}},
        {**HARDENED, "runAsUser": SIDECAR_NON_ROOT_UID, **RUNTIME_DEFAULT},
        id="no-user-anywhere-gives-nobody",
    ),
    pytest.param(
        {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containerSecurityContext": {"runAsNonRoot": False},
        },
        None,
        id="base-container-false-overrides-pod-true",
    ),
    pytest.param(
        {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
            }
        },
        HARDENED,
        id="pod-seccomp-profile-is-inherited",
    ),
    pytest.param(
        {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}},
            "containerSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        },
        {**HARDENED, "runAsUser": SIDECAR_NON_ROOT_UID, **RUNTIME_DEFAULT},
        id="pod-unconfined-is-not-inherited",
    ),
    pytest.param(
        {
            "podTemplate": {
                "spec": {
                    "securityContext": {"runAsNonRoot": True},
                    "containers": [{"name": "base", "securityContext": {"runAsUser": 4000}}],
                }
            }
        },
        {**HARDENED, "runAsUser": 4000, **RUNTIME_DEFAULT},
        id="from-the-pod-template",
    ),
]


@pytest.mark.parametrize("mode", ["native", "exec"])
@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_sidecar_security_context(
    mode: str, spec: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    sidecar = sidecar_of(build(mode, **spec))
    assert sidecar.get("securityContext") == expected


@pytest.mark.parametrize(
    "configured",
    [
        pytest.param({}, id="empty-turns-it-off"),
        pytest.param({"runAsUser": 7}, id="replaces-it-whole"),
    ],
)
def test_a_configured_context_wins(configured: dict[str, Any]) -> None:
    settings = PodSettings(xcom_sidecar_security_context=configured)
    pod = build(settings=settings, securityContext={"runAsNonRoot": True, "runAsUser": 1000})
    assert sidecar_of(pod)["securityContext"] == configured


@pytest.mark.parametrize(
    "template_spec",
    [
        {"securityContext": "nonsense"},
        {"securityContext": {"runAsNonRoot": True, "seccompProfile": "x"}},
        {"containers": [{"name": "base", "securityContext": ["x"]}]},
    ],
)
def test_a_malformed_template_context_does_not_crash_the_builder(
    template_spec: dict[str, Any],
) -> None:
    # The API server refuses such a pod (InvalidSpec with its words); building it must work.
    pod = build(podTemplate={"spec": template_spec})
    assert sidecar_of(pod)["name"] == XCOM_SIDECAR_NAME


def test_the_base_container_is_left_alone() -> None:
    spec = {"securityContext": {"runAsNonRoot": True}, "containerSecurityContext": {"runAsUser": 5}}
    base = build(**spec)["spec"]["containers"][0]
    assert base["securityContext"] == {"runAsUser": 5}


# --- the property: the sidecar satisfies Restricted whenever the base container must --------

_UIDS = st.none() | st.integers(min_value=0, max_value=70000)
_BOOLS = st.none() | st.booleans()
_SECCOMP = st.none() | st.sampled_from(
    [
        {"type": "RuntimeDefault"},
        {"type": "Localhost", "localhostProfile": "p.json"},
        {"type": "Unconfined"},
    ]
)


@st.composite
def contexts(draw: st.DrawFn, with_seccomp: bool) -> dict[str, Any]:
    fields = {"runAsNonRoot": draw(_BOOLS), "runAsUser": draw(_UIDS), "runAsGroup": draw(_UIDS)}
    if with_seccomp:
        fields["seccompProfile"] = draw(_SECCOMP)
    return {k: v for k, v in fields.items() if v is not None}


def effective(pod_context: dict[str, Any], container: dict[str, Any], field: str) -> Any:
    context = container.get("securityContext") or {}
    return context[field] if field in context else pod_context.get(field)


@given(
    pod_context=contexts(with_seccomp=True),
    base_context=contexts(with_seccomp=False),
    mode=st.sampled_from(["native", "exec"]),
)
def test_sidecar_is_restricted_as_the_base_user_whenever_the_base_must_be_non_root(
    pod_context: dict[str, Any], base_context: dict[str, Any], mode: str
) -> None:
    pod = build(mode, securityContext=pod_context, containerSecurityContext=base_context)
    base, sidecar = pod["spec"]["containers"][0], sidecar_of(pod)
    pod_context = pod["spec"]["securityContext"]
    if effective(pod_context, base, "runAsNonRoot") is not True:
        assert "securityContext" not in sidecar
        return
    context = sidecar["securityContext"]
    assert effective(pod_context, sidecar, "runAsNonRoot") is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    seccomp = effective(pod_context, sidecar, "seccompProfile") or {}
    assert seccomp.get("type") in ("RuntimeDefault", "Localhost")
    base_user = effective(pod_context, base, "runAsUser")
    sidecar_user = effective(pod_context, sidecar, "runAsUser")
    assert sidecar_user == (SIDECAR_NON_ROOT_UID if base_user is None else base_user)
    assert effective(pod_context, sidecar, "runAsGroup") == effective(
        pod_context, base, "runAsGroup"
    )


# --- a result the sidecar's user may not read: said, not lost -------------------------------

NOBODY = 65534


def _as_nobody_in(directory: Path, script: str, *, term: bool) -> bytes:
    """Run ``sh -c script`` as uid/gid 65534 in ``directory``; SIGTERM it if ``term``."""
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TASKRUN_XCOM_RESULT_FILE": str(directory / "return.json"),
        "TASKRUN_XCOM_TERMINATION_LOG": str(directory / "termination-log"),
    }
    proc = subprocess.Popen(
        [*argv, "sh", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        if term:
            # The background sleep exists only after the trap is set: then SIGTERM is safe.
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not children.read_text().split():
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stderr == b"", stderr
    return stdout


@pytest.fixture
def private_result() -> Iterator[Path]:
    """A shared directory (the emptyDir is 0777) holding root's return.json, mode 0600."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to write a file another user may not read")
    directory = Path(tempfile.mkdtemp(prefix="xcom-"))
    try:
        directory.chmod(0o777)
        result = directory / "return.json"
        result.write_bytes(b'{"secret": 1}')
        result.chmod(0o600)
        # The kubelet creates the termination message file 0666 for any container user.
        message = directory / "termination-log"
        message.touch()
        message.chmod(0o666)
        yield directory
    finally:
        shutil.rmtree(directory)


def test_the_native_sidecar_says_it_may_not_read_the_result(private_result: Path) -> None:
    stdout = _as_nobody_in(private_result, NATIVE_XCOM_SCRIPT, term=True)
    message = (private_result / "termination-log").read_text()
    assert (stdout, message) == (b"", f"unreadable:{NOBODY}")
    decoded = decode(message, 1024)
    assert isinstance(decoded, Result)
    assert decoded.reason == Reason.RESULT_INVALID
    assert f"{XCOM_SIDECAR_NAME} container (uid {NOBODY}) may not read it" in str(decoded.message)


def test_the_exec_read_says_it_may_not_read_the_result(private_result: Path) -> None:
    command = EXEC_READ_COMMAND[2].replace(XCOM_RESULT_PATH, str(private_result / "return.json"))
    result = from_exec(_as_nobody_in(private_result, command, term=False), 1024)
    assert result.reason == Reason.RESULT_INVALID
    assert f"{XCOM_SIDECAR_NAME} container may not read it" in str(result.message)
