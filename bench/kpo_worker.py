"""One Airflow task, run the way a worker (and for deferrable tasks, a triggerer) runs it.

`python -m bench.kpo_worker --mode MODE --kubeconfig PATH --namespace NS --seconds N --out F`

MODE is kpo-blocking, kpo-deferrable, taskrun-blocking or taskrun-deferrable. The task is
KubernetesPodOperator (the real cncf.kubernetes provider) or TaskRunOperator, built with
the same arguments and called offline: ``execute(context)`` with a minimal context, no
Airflow database, no connection (kubernetes_conn_id=None, config_file = devcluster's
kubeconfig). A deferrable task runs in three phases, as Airflow runs it:

- worker-start: ``execute()`` until it raises TaskDeferred;
- triggerer: the trigger is serialized and rebuilt from its classpath and kwargs, as the
  triggerer does, and run on an asyncio loop until its first event;
- worker-resume: a fresh operator's ``method_name(context, event=...)``.

The CPU seconds of this process are taken around each phase (imports excluded), and every
Kubernetes client made here gets a user agent starting ``kpo-bench/<mode>`` so that
devcluster's request log tells this process's requests from the controller's. The
result (phases with wall-clock bounds and CPU seconds, outcome, pod log lines seen in the
task log) is written as JSON to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import json
import logging
import os
import tempfile
import time
import traceback
import types
from typing import Any

from devcluster.scenario import SCENARIO_ANNOTATION

MODES = ("kpo-blocking", "kpo-deferrable", "taskrun-blocking", "taskrun-deferrable")
USER_AGENT_PREFIX = "kpo-bench/"
DAG_ID = "kpo_bench"
RUN_ID = "manual__2026-11-24T00:00:00+00:00"
LOG_MARK = "kpo-bench tick"


def scenario(seconds: float) -> dict[str, Any]:
    """The simulated pod: runs `seconds`, printing a line about every 5 s."""
    lines = max(1, int(seconds // 5))
    logs = "".join(f"{LOG_MARK} {i + 1}/{lines}\n" for i in range(lines))
    return {"exitCode": 0, "runSeconds": seconds, "logs": logs}


def _tag_user_agents(mode: str) -> None:
    """Prefix the user agent of every kubernetes (sync and asyncio) ApiClient made here."""
    tag = f"{USER_AGENT_PREFIX}{mode}"
    for module_name in ("kubernetes.client.api_client", "kubernetes_asyncio.client.api_client"):
        module = importlib.import_module(module_name)
        cls = module.ApiClient
        original = cls.__init__

        def init(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            self.user_agent = f"{tag} {self.user_agent}"

        cls.__init__ = init


class FakeTI:
    """The task instance fields the two operators read, and an in-memory XCom."""

    def __init__(self, task_id: str) -> None:
        self.dag_id = DAG_ID
        self.task_id = task_id
        self.run_id = RUN_ID
        self.try_number = 1
        self.map_index = -1
        self.start_date = datetime.datetime.now(tz=datetime.UTC)
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcom[key] = value


def make_context(task_id: str) -> dict[str, Any]:
    ti = FakeTI(task_id)
    dag = types.SimpleNamespace(dag_id=DAG_ID)
    return {"ti": ti, "task_instance": ti, "run_id": RUN_ID, "dag": dag}


def make_operator(mode: str, kubeconfig: str, namespace: str, seconds: float) -> Any:
    kind, _, wait = mode.partition("-")
    kwargs: dict[str, Any] = {
        "task_id": mode.replace("-", "_"),
        "name": f"bench-{mode}",
        "namespace": namespace,
        "image": "busybox:1.36",
        "cmds": ["sh", "-c", "for i in $(seq 12); do echo tick; sleep 5; done"],
        "annotations": {SCENARIO_ANNOTATION: json.dumps(scenario(seconds))},
        "kubernetes_conn_id": None,
        "in_cluster": False,
        "config_file": kubeconfig,
        "get_logs": True,
        "deferrable": wait == "deferrable",
    }
    if kind == "kpo":
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

        return KubernetesPodOperator(**kwargs)
    from taskrun.airflow.operator import TaskRunOperator

    return TaskRunOperator(**kwargs)


def _rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Phases:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def run(self, name: str, role: str, fn: Any) -> Any:
        started, cpu0 = time.time(), time.process_time()
        try:
            return fn()
        finally:
            self.items.append(
                {
                    "name": name,
                    "role": role,
                    "started": started,
                    "ended": time.time(),
                    "cpu_seconds": time.process_time() - cpu0,
                    "rss_mb": round(_rss_bytes() / 2**20, 1),
                }
            )


async def _first_event(trigger: Any) -> Any:
    """What the triggerer does with one trigger: run it until its first event."""
    events = trigger.run()
    try:
        async for event in events:
            return event
    finally:
        await events.aclose()
    raise RuntimeError("the trigger ended without an event")


def _rebuild(trigger: Any) -> Any:
    """Serialize and rebuild the trigger from its classpath, as the triggerer does."""
    classpath, kwargs = trigger.serialize()
    module_name, _, class_name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**kwargs)


# Modules a long-running worker or triggerer has loaded before it runs this task (the DAG
# file imports the operator; the triggerer runs many triggers): loaded before the clock starts.
WARM_MODULES = (
    "kubernetes.client",
    "kubernetes.config",
    "kubernetes.watch",
    "kubernetes_asyncio.client",
    "kubernetes_asyncio.config",
    "kubernetes_asyncio.watch",
    "airflow.providers.cncf.kubernetes.hooks.kubernetes",
    "airflow.providers.cncf.kubernetes.utils.pod_manager",
    "airflow.providers.cncf.kubernetes.triggers.pod",
    "taskrun.airflow.client",
    "taskrun.airflow.trigger",
)


def _wait_for_go(go_file: str | None) -> None:
    """Tell the parent we are loaded, then wait until it opens the measurement window."""
    if not go_file:
        return
    open(go_file + ".ready", "w").close()
    while not os.path.exists(go_file):
        time.sleep(0.01)


def run_task(
    mode: str, kubeconfig: str, namespace: str, seconds: float, go_file: str | None = None
) -> dict[str, Any]:
    from airflow.providers.common.compat.sdk import TaskDeferred

    for module in WARM_MODULES:
        importlib.import_module(module)
    # Both operators' KubernetesHook looks up `kubernetes_default`; the first lookup in a
    # process configures Airflow's ORM mappers (~1 CPU s), a one-off a warm worker has paid.
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    KubernetesHook.get_connection(KubernetesHook.default_conn_name)
    phases = Phases()
    context = make_context(mode.replace("-", "_"))
    outcome: dict[str, Any] = {"ok": False, "error": None, "return_value": None}
    op = make_operator(mode, kubeconfig, namespace, seconds)
    _wait_for_go(go_file)
    try:
        if mode.endswith("blocking"):
            outcome["return_value"] = phases.run("worker", "worker", lambda: op.execute(context))
        else:
            try:
                phases.run("worker-start", "worker", lambda: op.execute(context))
                raise RuntimeError("a deferrable task finished without deferring")
            except TaskDeferred as deferred:
                trigger, method = deferred.trigger, deferred.method_name
                extra = deferred.kwargs or {}
            event = phases.run(
                "triggerer", "triggerer", lambda: asyncio.run(_first_event(_rebuild(trigger)))
            )
            outcome["event"] = event.payload
            resumed = make_operator(mode, kubeconfig, namespace, seconds)
            outcome["return_value"] = phases.run(
                "worker-resume",
                "worker",
                lambda: getattr(resumed, method)(context, event=event.payload, **extra),
            )
        outcome["ok"] = True
    except Exception as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"
        outcome["traceback"] = traceback.format_exc()
    outcome["xcom_keys"] = sorted(context["ti"].xcom)
    if mode.startswith("taskrun"):
        from taskrun.airflow import client

        outcome["watch_timeout_seconds"] = getattr(client, "WATCH_TIMEOUT_SECONDS", None)
    return {"mode": mode, "phases": phases.items, **outcome}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kpo_worker")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--go-file", help="wait for this file to exist before starting the task")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="kpo-bench-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # The task log: plain lines on stderr, as a worker's log handler would receive them.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _tag_user_agents(args.mode)
    result = run_task(args.mode, args.kubeconfig, args.namespace, args.seconds, args.go_file)
    with open(args.out, "w") as fh:
        json.dump(result, fh, default=str)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
