"""The chaos suite's instruments catch what they claim to, so its zeros mean something."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.chaos import (
    Api,
    FaultConfig,
    PodObserver,
    check_outcome,
    check_result,
    common_prefix,
    disable_faults,
    enable_faults,
    make_cases,
    pods_created,
    scan_logs,
)

FAKE_CONTROLLER = "fake-controller/0.1"


async def _create_pod(session: aiohttp.ClientSession, url: str, ns: str, owner: str) -> int:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "run-1",
            "labels": {"taskrun.dev/attempt": "1"},
            "ownerReferences": [
                {
                    "apiVersion": "taskrun.dev/v1alpha1",
                    "kind": "TaskRun",
                    "name": "run",
                    "uid": owner,
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "base", "image": "busybox"}]},
    }
    async with session.post(f"{url}/api/v1/namespaces/{ns}/pods", json=pod) as resp:
        return resp.status


def test_a_second_pod_for_one_attempt_is_counted(cluster: Any) -> None:
    async def scenario() -> tuple[int, int, dict[tuple[str, str], int]]:
        api = Api(cluster.url)
        observer = PodObserver(api, "instruments")
        owner = str(uuid.uuid4())
        headers = {"User-Agent": FAKE_CONTROLLER}
        since = len(cluster.requests)
        try:
            await api.create_namespace("instruments")
            observer.start()
            async with aiohttp.ClientSession(headers=headers) as fake:
                assert await _create_pod(fake, cluster.url, "instruments", owner) == 201
                # What a controller that lost its memory would do: the pod is gone (its
                # finish action deleted it), so a second create of the same name succeeds.
                # The garbage collector may beat us to it: the owner uid exists nowhere.
                path = "/api/v1/namespaces/instruments/pods/run-1"
                await api.ensure("DELETE", path, {"gracePeriodSeconds": 0}, ok=(200, 202, 404))
                for _ in range(100):
                    status, _ = await api.call("GET", path)
                    if status == 404:
                        break
                    await asyncio.sleep(0.05)
                assert await _create_pod(fake, cluster.url, "instruments", owner) == 201
            for _ in range(100):
                if len(observer.pods.get((owner, "1"), ())) == 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            await observer.stop()
            await api.close()
        records = cluster.requests.records[since:]
        return pods_created(records, "instruments"), len(observer.pods), observer.duplicates()

    created, attempts, duplicates = asyncio.run(scenario())
    assert created == 2
    assert created - attempts == 1
    assert len(duplicates) == 1 and next(iter(duplicates.values())) == 2


def test_faults_hit_the_controller_and_spare_the_harness(cluster: Any) -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        api = Api(cluster.url)
        # Two agents with no common prefix, as kopf's and the controller's own client.
        agents = {FAKE_CONTROLLER, "kopf/1.45.2"}
        enable_faults(cluster, agents, FaultConfig(error_rate=1.0, throttle_rate=0))
        try:
            async with aiohttp.ClientSession(headers={"User-Agent": FAKE_CONTROLLER}) as fake:
                faulted = []
                for _ in range(5):
                    async with fake.get(f"{cluster.url}/api/v1/namespaces") as resp:
                        faulted.append(resp.status)
            spared = [(await api.call("GET", "/api/v1/namespaces"))[0] for _ in range(5)]
        finally:
            disable_faults(cluster)
            await api.close()
        return faulted, spared

    faulted, spared = asyncio.run(scenario())
    assert all(code >= 500 for code in faulted), faulted
    assert spared == [200] * 5
    # Lifted for everyone afterwards.
    assert cluster.faults.applies(
        user_agent=FAKE_CONTROLLER, resource="pods", verb="get", namespace="", discovery=False
    )
    assert cluster.faults.error_rate == 0 and "applies" not in vars(cluster.faults)


def test_common_prefix_never_covers_the_harness() -> None:
    assert common_prefix({"kopf/1.45.2"}) == "kopf/1.45.2"
    assert common_prefix({"kopf/1.45.2", "kopf/1.45.2 taskrun"}) == "kopf/1.45.2"
    # Nothing in common: no scope is better than a scope that would fault the harness.
    assert common_prefix({"kopf/1.45.2", "taskrun-controller/0.1"}) == ""
    assert common_prefix(set()) == ""


def test_results_are_compared_byte_for_byte() -> None:
    case = next(c for c in make_cases(10) if c.kind == "result")
    assert case.expected.result is not None
    text = case.expected.result.decode()
    good = {"status": {"phase": "Succeeded", "reason": "Succeeded", "exitCode": 0, "result": text}}
    assert check_outcome(case, good) == [] and check_result(case, good) is None
    # Same JSON value, different bytes (ASCII escapes): a re-serialised result is wrong.
    reserialised = json.dumps(json.loads(text))
    assert json.loads(reserialised) == json.loads(text)
    wrong = {"status": {**good["status"], "result": reserialised}}
    assert check_result(case, wrong) == "wrong"
    lost = {"status": {k: v for k, v in good["status"].items() if k != "result"}}
    assert check_result(case, lost) == "lost"
    failed = {"status": {"phase": "Failed", "reason": "ExitCode", "exitCode": 1}}
    assert len(check_outcome(case, failed)) == 2


def test_log_scan_tells_retried_handler_errors_from_escaped_ones(tmp_path: Path) -> None:
    log = tmp_path / "controller.log"
    log.write_text(
        "[kopf.objects] Handler 'reconcile' failed with an exception and will try again in"
        " 60 seconds: injected fault (503)\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "kopf._cogs.clients.errors.APIServerError: injected fault (503)\n"
        "[asyncio] Task exception was never retrieved\n"
        "Traceback (most recent call last):\n"
        '  File "y.py", line 2, in g\n'
        "KeyError: 'status'\n"
    )
    scan = scan_logs([log])
    assert scan.tracebacks == 2
    assert scan.retried_tracebacks == 1
    assert len(scan.unhandled) == 2  # the never-retrieved line and its traceback
    assert "KeyError" in scan.unhandled[1]
    assert "never retrieved" in scan.unhandled[0]
