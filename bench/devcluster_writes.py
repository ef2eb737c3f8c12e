"""devcluster's own cost per write: microseconds per pod create, pod status patch and
ConfigMap create in its Store (no HTTP), one process, one JSON line.

``python -m bench.devcluster_writes [N]``. To compare two versions of devcluster side by
side, run it alternately from two checkouts (``PYTHONPATH=<checkout>``) and compare the
medians as ratios (docs/benchmarks.md, "devcluster's own write cost").
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from devcluster.resources import CONFIGMAPS, NAMESPACES, PODS
from devcluster.store import Store

NAMESPACE = "bench"


def pod(name: str) -> dict[str, Any]:
    """A pod as the controller makes one: a container with limits (defaulted into requests)."""
    container = {
        "name": "base",
        "image": "busybox:1.36",
        "command": ["sh", "-c", "echo hi"],
        "resources": {"limits": {"cpu": "1", "memory": "64Mi"}},
    }
    return {
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [container], "restartPolicy": "Never"},
    }


async def measure(n: int) -> dict[str, float]:
    """Microseconds per write of each kind, n writes each."""
    store = Store()
    await store.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
    out: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(n):
        await store.create(PODS, NAMESPACE, pod(f"p{i}"))
    out["pod create"] = (time.perf_counter() - started) / n * 1e6
    running = {"status": {"phase": "Running"}}
    started = time.perf_counter()
    for i in range(n):
        await store.patch(PODS, NAMESPACE, f"p{i}", running, "merge", "status")
    out["pod status patch"] = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for i in range(n):
        cm = {"metadata": {"name": f"c{i}"}, "data": {"k": "v"}}
        await store.create(CONFIGMAPS, NAMESPACE, cm)
    out["configmap create"] = (time.perf_counter() - started) / n * 1e6
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))))
