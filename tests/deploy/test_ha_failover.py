"""HA failover: the active replica of the ha overlay is SIGKILLed, the standby takes over.

A killed process leaves its kopf peering heartbeat behind; the standby resumes once it
expires (`--peering-lifetime`, here 10 s instead of the default 60 s to keep the test
short). A TaskRun created right after the kill must then finish, with one pod.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from controller_run import (
    NAMESPACE,
    Kubectl,
    controller_process,
    deployed_args,
    free_port,
    http_ok,
    peered_devcluster,
    taskrun,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)

LIFETIME = 10
PRIORITY = re.compile(r"peering '[^']+' with priority (\d+), lifetime (\d+) s")


def _phase(k: Kubectl, name: str) -> str | None:
    found = json.loads(k("get", "taskruns", "-n", NAMESPACE, "-o", "json"))["items"]
    for item in found:
        if item["metadata"]["name"] == name:
            return (item.get("status") or {}).get("phase")
    return None


def _priority(log: Path) -> int:
    match = wait_for(lambda: PRIORITY.search(log.read_text()), 30, f"the priority in {log}")
    assert int(match.group(2)) == LIFETIME
    return int(match.group(1))


def test_the_standby_takes_over_when_the_active_replica_is_killed(tmp_path: Path) -> None:
    with peered_devcluster() as dc:
        k = Kubectl(str(dc.kubeconfig_path), tmp_path / "kubectl-cache")
        with contextlib.ExitStack() as stack:
            procs, logs, health = [], [], []
            for i in range(2):
                metrics_port, health_port = free_port(), free_port()
                args = [
                    *deployed_args("ha", metrics_port, health_port),
                    f"--peering-lifetime={LIFETIME}",
                ]
                logs.append(tmp_path / f"c{i}.log")
                health.append(health_port)
                procs.append(
                    stack.enter_context(controller_process(args, str(dc.kubeconfig_path), logs[-1]))
                )
            for port in health:
                wait_for(lambda p=port: http_ok(f"http://127.0.0.1:{p}/healthz"), 30, "up")
            priorities = [_priority(log) for log in logs]
            active = priorities.index(max(priorities))

            before = taskrun("before", {"exitCode": 0, "runSeconds": 0.2})
            k("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(before))
            wait_for(lambda: _phase(k, "before") == "Succeeded", 30, "the first TaskRun")

            procs[active].kill()  # SIGKILL: no clean-up, its heartbeat stays behind
            procs[active].wait()
            killed = time.monotonic()
            after = taskrun("after", {"exitCode": 0, "runSeconds": 0.2})
            k("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(after))
            wait_for(
                lambda: _phase(k, "after") == "Succeeded",
                LIFETIME + 30,
                "the standby to take over and finish the TaskRun",
            )
            took = time.monotonic() - killed
            print(f"failover: the TaskRun created after the kill finished in {took:.1f} s")
            # kopf renews a heartbeat for `lifetime` s every 1-5 s here, so the killed peer
            # blocks the standby for 5-10 s: a quick finish would mean the standby was killed.
            assert 3 <= took <= LIFETIME + 20
            pods = dc.requests.count(verb="create", resource="pods", namespace=NAMESPACE, code=201)
            assert pods == 2  # one per TaskRun: nobody made a second pod
            # Nothing of ours failed in the standby. (kopf itself may log an internal
            # assertion from an aiohttp cancel callback when the peer's connections drop.)
            standby_log = logs[1 - active].read_text()
            assert not re.search(r'File "[^"]*/controller/[^"]*", line', standby_log)
            assert not re.search(r"reconcile \S+ failed", standby_log)
