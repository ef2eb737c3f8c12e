"""Peak RSS of the controller (a real ``python -m controller``) while statuses at the
status budget (--max-status-bytes, 1 MiB by default) are written.

    .venv/bin/python -m bench.status_budget_rss

Prints the controller's RSS and peak RSS (VmHWM) idle, then after each TaskRun.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.cluster import running_cluster, running_controller
from bench.procstat import sample
from controller.core import budget
from devcluster.resources import NAMESPACES, ResourceKey
from devcluster.scenario import SCENARIO_ANNOTATION
from taskrun.api import API_VERSION, GROUP, KIND, PLURAL, VERSION, XCOM_RESULT_PATH

TASKRUNS = ResourceKey(GROUP, VERSION, PLURAL)
NS = "rss"

CASES: list[tuple[str, str, int]] = [
    # (name, character, count): results whose status lands at, or just over, the budget
    ("plain-at-budget", "x", 1_040_000),  # ~1.04 MB encoded: written
    ("escaped-at-budget", "<", 173_000),  # ~1.04 MB encoded (6 bytes each): written
    ("escaped-over-budget", "<", 300_000),  # 1.8 MB encoded: ResultTooLarge
]


def mb(n: int) -> float:
    return round(n / 2**20, 1)


def main() -> None:
    with running_cluster() as cluster, running_controller(cluster) as proc:
        store = cluster.store
        cluster.call(store.create(NAMESPACES, None, {"metadata": {"name": NS}}))
        time.sleep(2)
        idle = sample(proc.pid)
        print(f"idle: rss {mb(idle.rss_bytes)} MiB, peak {mb(idle.peak_rss_bytes)} MiB")
        for name, char, count in CASES:
            content = {"parts": ['"', {"text": char, "repeat": count}, '"']}
            scenario = {"files": {XCOM_RESULT_PATH: content}}
            body: dict[str, Any] = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "image": "busybox:1.36",
                    "doXcomPush": True,
                    "annotations": {SCENARIO_ANNOTATION: json.dumps(scenario)},
                },
            }
            cluster.call(store.create(TASKRUNS, NS, body))
            status: dict[str, Any] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = cluster.call(store.get(TASKRUNS, NS, name)).get("status") or {}
                if status.get("phase") in ("Succeeded", "Failed"):
                    break
                time.sleep(0.1)
            time.sleep(1)
            now = sample(proc.pid)
            print(
                f"{name}: {status.get('phase')}/{status.get('reason')},"
                f" status {budget.encoded_size(status)} bytes encoded;"
                f" rss {mb(now.rss_bytes)} MiB, peak {mb(now.peak_rss_bytes)} MiB"
            )


if __name__ == "__main__":
    main()
