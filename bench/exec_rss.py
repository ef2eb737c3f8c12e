"""Peak RSS of the controller while a large result is offered in ``--xcom-mode=exec``.

``python -m bench.exec_rss [MiB]``: devcluster in this process, the controller as a
subprocess (as a user runs it), one TaskRun whose return.json is MiB mebibytes of valid JSON.
Prints the controller's RSS before, its peak (VmHWM) after, and how the run ended.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.cluster import Api, running_cluster, running_controller
from bench.procstat import sample
from devcluster.scenario import SCENARIO_ANNOTATION
from taskrun.api import GROUP, PLURAL, VERSION, XCOM_RESULT_PATH

NAMESPACE = "exec-rss"


def spec(mebibytes: int) -> dict:
    chunk = "a" * 1024
    content = {"parts": ['"', {"text": chunk, "repeat": mebibytes * 1024}, '"']}
    scenario = {"runSeconds": 0.1, "files": {XCOM_RESULT_PATH: content}}
    return {
        "image": "busybox",
        "doXcomPush": True,
        "annotations": {SCENARIO_ANNOTATION: json.dumps(scenario)},
    }


async def run(mebibytes: int) -> int:
    with running_cluster() as cluster, running_controller(cluster, "--xcom-mode=exec") as proc:
        await asyncio.sleep(1.0)
        before = sample(proc.pid)
        api = Api(cluster.url)
        try:
            await api.create_namespace(NAMESPACE)
            await api.create_taskrun(NAMESPACE, "big", spec(mebibytes))
            path = f"{cluster.url}/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/big"
            started = time.monotonic()
            status: dict = {}
            while time.monotonic() - started < 300:
                if proc.poll() is not None:
                    print(f"controller exited with {proc.returncode}")
                    break
                async with api.session.get(path) as resp:
                    status = (await resp.json()).get("status") or {}
                if status.get("phase") in ("Succeeded", "Failed"):
                    break
                await asyncio.sleep(0.5)
            after = sample(proc.pid) if proc.poll() is None else None
        finally:
            await api.close()
    mib = 1024 * 1024
    print(f"result offered: {mebibytes} MiB (+2 bytes)")
    print(f"controller RSS before: {before.rss_bytes / mib:.0f} MiB")
    if after is not None:
        print(f"controller peak RSS (VmHWM): {after.peak_rss_bytes / mib:.0f} MiB")
    print(f"ended: {status.get('phase')} {status.get('reason')}: {status.get('message')}")
    print(f"took {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 256)))
