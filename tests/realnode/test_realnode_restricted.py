"""doXcomPush in a namespace enforcing the Restricted Pod Security Standard, on the real node:
the sidecar runs as the base container's non-root user (docs/security.md), so it reads a
result the task wrote mode 0600; a sidecar of another user says it may not read it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import NodeKubectl, taskrun

# The file is created under umask 077 (mode 0600), then holds who wrote it and its mode.
WRITE = (
    "umask 077; f=/airflow/xcom/return.json; : > $f; "
    'printf \'{"uid": %s, "mode": "%s"}\' "$(id -u)" "$(stat -c %a $f)" > $f'
)
POD = {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


@pytest.fixture
def restricted(node_kubectl: NodeKubectl, realcluster_ns: str) -> NodeKubectl:
    enforce = "pod-security.kubernetes.io/enforce=restricted"
    node_kubectl.run("label", "namespace", realcluster_ns, enforce)
    return node_kubectl


def sidecar_of(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod["spec"]
    everything = [*(spec.get("initContainers") or []), *spec["containers"]]
    (sidecar,) = [c for c in everything if c["name"] == "airflow-xcom-sidecar"]
    return dict(sidecar)


@pytest.mark.parametrize(
    ("flags", "container", "uid"),
    [
        pytest.param((), CONTAINER, 1000, id="native-as-the-pods-user"),
        pytest.param(("--xcom-mode", "exec"), CONTAINER, 1000, id="exec-as-the-pods-user"),
        pytest.param((), {**CONTAINER, "runAsUser": 2000}, 2000, id="native-as-the-bases-user"),
    ],
)
def test_a_restricted_pod_hands_a_private_result_over(
    restricted: NodeKubectl,
    node_controller_factory: Callable[..., Path],
    flags: tuple[str, ...],
    container: dict[str, Any],
    uid: int,
) -> None:
    node_controller_factory(*flags)
    spec = {"securityContext": POD, "containerSecurityContext": container, "doXcomPush": True}
    restricted.run("apply", "-f", "-", stdin=taskrun("private", WRITE, **spec))
    status = restricted.wait_finished("private")
    assert status["phase"] == "Succeeded", status
    assert json.loads(status["result"]) == {"uid": uid, "mode": "600"}
    pod = restricted.json("get", "pod", status["podName"])
    assert sidecar_of(pod)["securityContext"]["runAsNonRoot"] is True


def test_a_sidecar_of_another_user_says_it_may_not_read(
    restricted: NodeKubectl, node_controller_factory: Callable[..., Path]
) -> None:
    other = {**CONTAINER, "runAsNonRoot": True, "runAsUser": 3000}
    node_controller_factory("--xcom-sidecar-security-context", json.dumps(other))
    spec = {"securityContext": POD, "containerSecurityContext": CONTAINER, "doXcomPush": True}
    restricted.run("apply", "-f", "-", stdin=taskrun("other", WRITE, **spec))
    status = restricted.wait_finished("other")
    assert (status["phase"], status["reason"]) == ("Failed", "ResultInvalid"), status
    assert "airflow-xcom-sidecar container (uid 3000) may not read it" in status["message"]
