"""Results through the native sidecar hand-over, byte for byte, with no pods/exec."""

from __future__ import annotations

import pytest

from controller.handlers import Controller
from taskrun.api import XCOM_SIDECAR_NAME as SIDECAR
from tests.integration.conftest import Runs

RESULT = "/airflow/xcom/return.json"
CAP = 1024 * 1024


def json_of_size(size: int) -> str:
    """A JSON string literal of exactly ``size`` bytes."""
    return '"' + "x" * (size - 2) + '"'


def described(content: str) -> object:
    """The scenario form of a json_of_size() result: pod annotations cap at 256 KiB."""
    if len(content) < 64 * 1024:
        return content
    assert content == json_of_size(len(content))
    return {"parts": ['"', {"text": "x", "repeat": len(content) - 2}, '"']}


@pytest.mark.parametrize(
    "content",
    ["", '{"a": 10}\n', json_of_size(4096), json_of_size(4097), json_of_size(500 * 1024)],
    ids=["0B", "10B", "4KiB", "4KiB+1", "500KiB"],
)
def test_results_arrive_byte_for_byte(controller: Controller, runs: Runs, content: str):
    runs.create("xcom", scenario={"files": {RESULT: described(content)}}, doXcomPush=True)
    status = runs.wait_finished("xcom")
    assert status["phase"] == "Succeeded", status.get("message")
    if content:
        assert status["result"] == content
        assert status["resultSize"] == len(content.encode())
    else:
        assert "result" not in status
    assert runs.cluster.requests.count(namespace=runs.namespace, subresource="exec") == 0


def test_a_result_over_the_cap_fails_naming_both_sizes(controller: Controller, runs: Runs):
    big = {"text": "1", "repeat": CAP + 1}
    runs.create("big", scenario={"files": {RESULT: big}}, doXcomPush=True)
    status = runs.wait_finished("big")
    assert (status["phase"], status["reason"]) == ("Failed", "ResultTooLarge")
    assert f"{CAP + 1} bytes" in status["message"]
    assert f"allowed {CAP} bytes" in status["message"]
    assert "result" not in status
    # the size in the hand-over is enough: the oversized log is never read
    assert runs.cluster.requests.count(namespace=runs.namespace, subresource="log") <= 1


def test_invalid_json_fails_result_invalid(controller: Controller, runs: Runs):
    runs.create("bad", scenario={"files": {RESULT: "{not json"}}, doXcomPush=True)
    status = runs.wait_finished("bad")
    assert (status["phase"], status["reason"]) == ("Failed", "ResultInvalid")
    assert "not valid JSON" in status["message"]


def test_a_failed_base_container_still_hands_its_result_over(controller: Controller, runs: Runs):
    content = '{"rows": 3, "error": "late"}'
    runs.create("partial", scenario={"exitCode": 2, "files": {RESULT: content}}, doXcomPush=True)
    status = runs.wait_finished("partial")
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "ExitCode", 2)
    assert status["result"] == content


def test_an_inline_sized_result_survives_many_containers(controller: Controller, runs: Runs):
    # Five containers share the kubelet's 12 KiB of termination messages: 4000 bytes would
    # arrive cut inline, so the sidecar must hand it over through its log instead.
    content = json_of_size(4000)
    init = [{"name": f"init{i}", "image": "busybox"} for i in range(3)]
    runs.create("many", scenario={"files": {RESULT: content}}, doXcomPush=True, initContainers=init)
    status = runs.wait_finished("many")
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["result"] == content


def test_a_non_root_task_gets_a_restricted_sidecar_and_its_result(
    controller: Controller, runs: Runs
):
    # The Restricted shape a namespace enforcing it demands of the task (docs/security.md).
    runs.create(
        "nonroot",
        scenario={"files": {RESULT: '{"ok": true}'}},
        doXcomPush=True,
        onFinishAction="keep_pod",
        securityContext={"runAsNonRoot": True, "runAsUser": 1000},
        containerSecurityContext={
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsGroup": 1000,
        },
    )
    status = runs.wait_finished("nonroot")
    assert (status["phase"], status.get("result")) == ("Succeeded", '{"ok": true}'), status
    pod = runs.pod("nonroot-1")
    assert pod is not None
    (sidecar,) = [c for c in pod["spec"]["initContainers"] if c["name"] == SIDECAR]
    # The base container's group is copied; its user (the pod's) is inherited.
    assert sidecar["securityContext"] == {
        "runAsNonRoot": True,
        "runAsGroup": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
