"""Exec mode (clusters before 1.29): KPO's sleeping sidecar, read with pods/exec."""

from __future__ import annotations

import hashlib

import pytest

from controller.core.actions import (
    CoreSettings,
    DeletePod,
    Gathered,
    Observation,
    PatchStatus,
    ReadResult,
    StopSidecar,
)
from controller.core.podsettings import PodSettings
from controller.core.policies import decide
from controller.core.results import EMPTY_MARKER, Result, from_exec
from tests.unit.controller.test_policies import FINISHED, LATER, RUNNING_STATUS, finish, patched
from tests.unit.controller.test_status import pod, running, taskrun, terminated

EXEC = CoreSettings(pod=PodSettings(xcom_mode="exec"))
NATIVE = CoreSettings(pod=PodSettings(xcom_mode="native"))


def sleeping(base_code: int):
    """Base container done, KPO's sidecar still sleeping: the pod stays Running."""
    return pod(
        "Running",
        base=terminated(base_code),
        extra=[{"name": "airflow-xcom-sidecar", "state": running()}],
    )


def test_the_base_container_ending_ends_the_attempt_and_reads_the_result_by_exec():
    tr = taskrun(status=RUNNING_STATUS, doXcomPush=True)
    first = decide(Observation(tr, sleeping(0), LATER), EXEC)
    assert first.actions == []
    assert ReadResult("run-1", "airflow-xcom-sidecar", via_exec=True) in first.reads
    gathered = Gathered(result=Result(text='{"n": 1}', size=8))
    second = decide(Observation(tr, sleeping(0), LATER, gathered=gathered), EXEC)
    patch = patched(second)
    assert (patch["phase"], patch["result"]) == ("Succeeded", '{"n": 1}')
    assert [type(a) for a in second.actions if not isinstance(a, PatchStatus)][-1] is DeletePod


def test_native_mode_waits_for_the_sidecars_hand_over():
    tr = taskrun(status=RUNNING_STATUS, doXcomPush=True)
    decision = decide(Observation(tr, sleeping(0), LATER), NATIVE)
    assert decision.reads == []
    patches = [a.patch for a in decision.actions if isinstance(a, PatchStatus)]
    assert all(p.get("phase", "Running") == "Running" for p in patches)
    assert not [a for a in decision.actions if isinstance(a, (DeletePod, StopSidecar))]


@pytest.mark.parametrize(
    ("action", "code", "stop"),
    [("keep_pod", 0, True), ("delete_succeeded_pod", 1, True), ("delete_pod", 0, False)],
)
def test_a_kept_pod_gets_its_sidecar_stopped(action, code, stop):
    tr = taskrun(status=RUNNING_STATUS, doXcomPush=True, onFinishAction=action)
    decision = finish(tr, sleeping(code), gathered=Gathered(result=Result()), settings=EXEC)
    stops = [a for a in decision.actions if isinstance(a, StopSidecar)]
    deletes = [a for a in decision.actions if isinstance(a, DeletePod)]
    assert bool(stops) is stop
    assert bool(deletes) is not stop


def test_a_restart_stops_a_sidecar_still_sleeping_in_a_kept_pod():
    tr = taskrun(status=FINISHED, doXcomPush=True, onFinishAction="keep_pod")
    pod = sleeping(0)
    decision = decide(Observation(tr, pod, LATER), EXEC)
    # the pod's uid: the controller sends one SIGINT per pod, whatever reconciles follow
    uid = pod["metadata"].get("uid")
    assert decision.actions == [StopSidecar("run-1", "airflow-xcom-sidecar", uid)]


def test_a_failed_base_container_is_judged_by_its_exit_code():
    tr = taskrun(status=RUNNING_STATUS, doXcomPush=True, skipOnExitCode=[3])
    gathered = Gathered(result=Result())
    patch = patched(finish(tr, sleeping(3), gathered=gathered, settings=EXEC))
    assert (patch["phase"], patch["exitCode"]) == ("Skipped", 3)


def printed(data: bytes) -> bytes:
    """What EXEC_READ_COMMAND prints for a file holding ``data``: wc -c, sha256sum, cat."""
    path = "/airflow/xcom/return.json"
    return f"{len(data)} {path}\n{hashlib.sha256(data).hexdigest()}  {path}\n".encode() + data


@pytest.mark.parametrize(
    ("output", "text"),
    [
        (EMPTY_MARKER.encode() + b"\n", None),
        (printed(b'{"a": 1}'), '{"a": 1}'),
        (printed(b"[]"), "[]"),
        (b"      2 /airflow/xcom/return.json\n" + printed(b"[]").split(b"\n", 1)[1], "[]"),
    ],
)
def test_exec_output(output, text):
    assert from_exec(output, 1024).text == text
