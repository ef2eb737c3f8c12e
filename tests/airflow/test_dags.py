"""`airflow dags test` of examples/dags against the session's cluster (--cluster, --node)
and the running controller.

Slow (each `airflow` command starts Airflow: ~10 s), so one DAG run per mode covers
success with XCom, failure and skip at once. examples/dags needs a Python image, which only
a simulated node plays; tests/airflow/dags has the same tasks on busybox and runs on the
real node too (`make test-node`). The worker-kill case runs the operator in a process that
is SIGKILLed mid-run and started again, as a restarted worker would; the triggerer-restart
case cancels the trigger mid-run and starts it again from its serialized form, as another
triggerer would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("airflow.providers.cncf.kubernetes")
pytest.importorskip("devcluster")

from devcluster.pytest_plugin import wait_for
from testcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = ROOT / "examples" / "dags"
BUSYBOX_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
AIRFLOW = Path(sys.executable).with_name("airflow")
CONTROLLER_AGENTS = ("taskrun-controller", "kopf")

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        importlib.util.find_spec("controller.__main__") is None,
        reason="the controller (python -m controller) is not there yet",
    ),
]


def _wait(condition: Any, timeout: float, what: str) -> Any:
    return wait_for(condition, timeout, interval=0.05, what=what)


@pytest.fixture(scope="module")
def cluster(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's cluster (--cluster) with the CRD and `python -m controller` running."""
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        kube.apply_file(crd)
    log = (tmp_path_factory.mktemp("controller") / "controller.log").open("wb")
    env = {**os.environ, "KUBECONFIG": str(kube.controller_kubeconfig)}
    since = time.time()
    controller = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "--all-namespaces",
            "--metrics-port=0",
            "--health-port=0",
            *kube.controller_flags,
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # kopf reports ready before its watches are open: wait for the watch itself.
        _wait(
            lambda: (
                any(
                    r.started >= since
                    for r in kube.requests.filter(verb="watch", resource="taskruns")
                )
                or controller.poll() is not None
            ),
            60,
            "the controller's TaskRun watch",
        )
        assert controller.poll() is None, f"controller exited, see {log.name}"
        yield kube
    finally:
        controller.send_signal(signal.SIGTERM)
        try:
            controller.wait(timeout=20)
        except subprocess.TimeoutExpired:
            controller.kill()
            controller.wait()
        log.close()


@pytest.fixture(scope="module")
def airflow_env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Importing the provider took over the default 30 s at load 11 (2 shared cores).
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "180",
    }
    env.pop("KUBECONFIG", None)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def _namespace(cluster: Cluster, name: str) -> str:
    return cluster.create_namespace(name)


def _connection(cluster: Cluster, namespace: str) -> str:
    extra = {"kube_config_path": str(cluster.kubeconfig_path), "namespace": namespace}
    return json.dumps({"conn_type": "kubernetes", "extra": extra})


def _states(env: dict[str, str], dag_id: str) -> dict[str, str]:
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (dag_id, dag_id),
        ).fetchall()
    return dict(rows)


def _result(env: dict[str, str], dag_id: str, task_id: str) -> Any:
    """The task's return_value XCom as Airflow stored it (JSON; Airflow 3's column holds
    the serialized value as a JSON string)."""
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        (value,) = conn.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
            (dag_id, task_id),
        ).fetchone()
    while isinstance(value, (str, bytes)):
        value = json.loads(value)
    return value


def _reads_and_acks(cluster: Cluster, namespace: str) -> tuple[int, int]:
    """The operator's reads of a finished pod's log (not the follows of a running one) and
    its log acks, in ``namespace``."""
    mine = [
        r
        for r in cluster.requests.filter(namespace=namespace)
        if not r.user_agent.startswith(CONTROLLER_AGENTS)
    ]
    reads = [
        r
        for r in mine
        if (r.resource, r.subresource) == ("pods", "log") and "follow=true" not in r.query.lower()
    ]
    acks = [r for r in mine if (r.verb, r.resource) == ("patch", "taskruns")]
    return len(reads), len(acks)


def _dags_test(
    cluster: Cluster, airflow_env: dict[str, str], dag_id: str, folder: Path, long_logs: int
) -> tuple[str, dict[str, str], str]:
    """`airflow dags test dag_id` from ``folder`` in a fresh namespace: the output, the
    environment it ran with and the namespace. ``long_logs``: the tasks whose log is longer
    than the TaskRun's log tail: only those are read from the pod and acknowledged."""
    namespace = _namespace(cluster, dag_id.replace("_", "-"))
    env = {
        **airflow_env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": _connection(cluster, namespace),
    }
    run = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id], env=env, capture_output=True, text=True, timeout=240
    )
    output = run.stdout + run.stderr
    assert _states(env, dag_id) == {
        "ok": "success",
        "check": "success",  # it read {"rows": 42, ...} from ok's XCom
        "fails": "failed",
        "skipped": "skipped",
    }, output[-5000:]
    assert _result(env, dag_id, "ok") == {"rows": 42, "table": "events"}
    # The failure carries the log tail.
    assert "ExitCode" in output
    assert "cannot reach the database" in output
    # The controller held each finished pod until the operator had read its log, or the
    # whole log came with the finished TaskRun.
    assert "is gone; last lines kept" not in output
    assert (
        cluster.requests.count(verb="create", resource="pods", subresource="", namespace=namespace)
        == 3
    )
    assert _reads_and_acks(cluster, namespace) == (long_logs, long_logs)
    return output, env, namespace


@pytest.mark.simulated_node_only("examples/dags runs python:3.12-slim, which no local image is")
@pytest.mark.parametrize("dag_id", ["taskrun_blocking", "taskrun_deferrable"])
def test_example_dag(cluster: Cluster, airflow_env: dict[str, str], dag_id: str) -> None:
    # Every task's log is short: each is printed from its TaskRun's status.
    output, _, _ = _dags_test(cluster, airflow_env, dag_id, DAGS_FOLDER, long_logs=0)
    assert "[base] loaded 42 rows" in output
    assert "[base] cannot reach the database" in output
    assert "[base] no new data" in output


@pytest.mark.parametrize("dag_id", ["taskrun_busybox_blocking", "taskrun_busybox_deferrable"])
def test_busybox_dag_shows_the_whole_log(
    cluster: Cluster, airflow_env: dict[str, str], dag_id: str
) -> None:
    """The pod's whole log (302 lines, far more than the TaskRun's log tail) is in the task
    log once, in order: streamed while it runs (blocking) or read at the end (deferrable)."""
    sys.path.insert(0, str(BUSYBOX_DAGS_FOLDER))
    try:
        from taskrun_busybox import LOG_LINES
    finally:
        sys.path.remove(str(BUSYBOX_DAGS_FOLDER))
    # `ok`'s log is read from the pod; `fails` and `skipped` print theirs from the status.
    output, _, _ = _dags_test(cluster, airflow_env, dag_id, BUSYBOX_DAGS_FOLDER, long_logs=1)
    # Airflow 3's console lines end in "  [logger] loc=file:line". Airflow 2 prints every
    # task log line twice, through two handlers with different time formats: each handler
    # (told apart by its prefix, digits aside) must show the whole log once.
    line_re = re.compile(r"^(.*?)\[base\] (.*?)(?:\s+\[[\w.]+\] loc=\S+)?$")
    shown: dict[str, list[str]] = {}
    short: dict[str, list[str]] = {}
    for m in map(line_re.search, output.splitlines()):
        if not m:
            continue
        handler = re.sub(r"\d", "0", m.group(1))
        if m.group(2) in ("cannot reach the database", "no new data"):
            short.setdefault(handler, []).append(m.group(2))
        else:
            shown.setdefault(handler, []).append(m.group(2))
    assert shown, output[-5000:]
    for prefix, lines in shown.items():
        assert lines == LOG_LINES, f"as {prefix!r}: {output[-5000:]}"
    # The short logs, from the status: once each per handler (blocking mode may have
    # followed part of them while their pods ran, and prints only the rest).
    assert Counter(line for lines in short.values() for line in lines) == {
        "cannot reach the database": len(shown),
        "no new data": len(shown),
    }, output[-5000:]


DRIVER = textwrap.dedent(
    """
    import json, sys, types
    from taskrun.airflow import TaskRunOperator

    scenario = {"runSeconds": 3, "logs": "working\\n",
                "files": {"/airflow/xcom/return.json": "{\\"done\\": true}"}}
    script = ("echo working; sleep 3; mkdir -p /airflow/xcom; "
              "echo '{\\"done\\": true}' > /airflow/xcom/return.json")
    op = TaskRunOperator(
        task_id="slow", image="busybox:1.36", cmds=["sh", "-c", script],
        namespace=sys.argv[1], do_xcom_push=True, config_file=sys.argv[2],
        annotations={"devcluster.taskrun.dev/scenario": json.dumps(scenario)},
    )
    ti = types.SimpleNamespace(dag_id="reattach", task_id="slow", try_number=1, map_index=-1,
                               xcom_push=lambda key, value: None)
    result = op.execute({"ti": ti, "run_id": "manual__reattach"})
    print("RESULT=" + json.dumps(result), flush=True)
    """
)


def test_killed_worker_reattaches_to_the_same_pod(
    cluster: Cluster, airflow_env: dict[str, str], tmp_path: Path
) -> None:
    namespace = _namespace(cluster, "reattach")
    args = [sys.executable, "-c", DRIVER, namespace, str(cluster.kubeconfig_path)]

    def pod_creates() -> int:
        return cluster.requests.count(
            verb="create", resource="pods", subresource="", namespace=namespace
        )

    first = subprocess.Popen(
        args, env=airflow_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait(pod_creates, 60, "the first worker's pod")
    finally:
        first.kill()  # SIGKILL: no on_kill, no cleanup, like a lost worker
        first.wait()

    second = subprocess.run(args, env=airflow_env, capture_output=True, text=True, timeout=120)
    assert "RESULT=" + json.dumps({"done": True}) in second.stdout, second.stdout + second.stderr
    assert "Reattached to existing TaskRun" in second.stdout + second.stderr
    assert pod_creates() == 1


@pytest.mark.parametrize(("action", "phase"), [("cancel", "Cancelled"), ("delete", None)])
def test_on_kill_stops_the_run(
    cluster: Cluster, airflow_env: dict[str, str], action: str, phase: str | None
) -> None:
    from kubernetes.client import ApiClient, Configuration, CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import load_kube_config

    from taskrun.airflow import TaskRunOperator, mapping
    from taskrun.airflow.client import TaskRunApi
    from taskrun.airflow.compat import AirflowException

    namespace = _namespace(cluster, f"kill-{action}")
    scenario = {"runSeconds": 120, "logs": "long job\n"}
    op = TaskRunOperator(
        task_id="long",
        image="busybox:1.36",
        # sh as pid 1 ignores SIGTERM unless it traps it (a real container's rule).
        cmds=["sh", "-c", "echo long job; trap 'exit 143' TERM; sleep 120 & wait"],
        namespace=namespace,
        config_file=str(cluster.kubeconfig_path),
        on_kill_action=action,
        annotations={"devcluster.taskrun.dev/scenario": json.dumps(scenario)},
    )
    ti = types.SimpleNamespace(
        dag_id="kill", task_id="long", try_number=1, map_index=-1, xcom_push=lambda **_: None
    )
    config = Configuration()
    load_kube_config(config_file=str(cluster.kubeconfig_path), client_configuration=config)
    with ApiClient(config) as client:
        core, api = CoreV1Api(client), TaskRunApi(client)

        def running_pod() -> str | None:
            pods = core.list_namespaced_pod(namespace).items
            return pods[0].metadata.name if pods and pods[0].status.phase == "Running" else None

        pods: list[str] = []

        def kill_when_running() -> None:
            # Airflow calls on_kill from outside execute(); execute() itself must run on the
            # main thread (Airflow 2 guards it with thread-local state).
            pods.append(_wait(running_pod, 60, "the pod to run"))
            op.on_kill()

        killer = threading.Thread(target=kill_when_running)
        killer.start()
        with pytest.raises(AirflowException) as killed:
            op.execute({"ti": ti, "run_id": "manual__kill"})
        killer.join(timeout=60)
        assert pods, "the pod never ran"
        name = mapping.taskrun_name("kill", "long", "manual__kill", -1, 1)
        if phase is None:
            _wait(lambda: not api.pod_exists(pods[0], namespace), 60, "the pod to be deleted")
            with pytest.raises(ApiException) as gone:
                api.get(name, namespace)
            assert gone.value.status == 404
            assert "was deleted" in str(killed.value)
        else:
            assert api.get(name, namespace)["status"]["phase"] == phase
            assert "Cancelled" in str(killed.value)


def test_restarted_triggerer_resumes_the_same_run(
    cluster: Cluster,
    airflow_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The triggerer stops mid-run (its trigger coroutines are cancelled, no on_kill) and
    another one starts the trigger again from its serialized form: one pod, the same run."""
    import asyncio
    import contextlib
    import importlib
    import logging

    from kubernetes.client import ApiClient, Configuration, CoreV1Api
    from kubernetes.config import load_kube_config

    from taskrun.airflow import TaskRunOperator, mapping
    from taskrun.airflow.client import TaskRunApi
    from taskrun.airflow.compat import TaskDeferred
    from taskrun.api import ANNOTATION_LOGS_ACKED

    # Airflow 3 logs through structlog, which caplog does not see: a plain task log here.
    task_log = logging.getLogger("test.taskrun.triggerer_restart")
    monkeypatch.setattr(TaskRunOperator, "log", property(lambda self: task_log))
    namespace = _namespace(cluster, "triggerer-restart")
    lines = [f"step {i} of 5" for i in range(1, 6)]
    scenario = {
        "runSeconds": 4,
        "logs": "".join(f"{line}\n" for line in lines),
        "files": {"/airflow/xcom/return.json": '{"done": true}'},
    }

    script = (
        "for i in 1 2 3 4 5; do echo step $i of 5; sleep 1; done; mkdir -p /airflow/xcom; "
        "echo '{\"done\": true}' > /airflow/xcom/return.json"
    )

    def operator() -> TaskRunOperator:
        return TaskRunOperator(
            task_id="slow",
            image="busybox:1.36",
            cmds=["sh", "-c", script],
            namespace=namespace,
            do_xcom_push=True,
            deferrable=True,
            config_file=str(cluster.kubeconfig_path),
            annotations={"devcluster.taskrun.dev/scenario": json.dumps(scenario)},
        )

    xcom: dict[str, Any] = {}
    ti = types.SimpleNamespace(
        dag_id="restart",
        task_id="slow",
        try_number=1,
        map_index=-1,
        xcom_push=lambda key, value, **_: xcom.__setitem__(key, value),
    )
    context: Any = {"ti": ti, "run_id": "manual__triggerer_restart"}
    with pytest.raises(TaskDeferred) as deferred:
        operator().execute(context)
    classpath, kwargs = deferred.value.trigger.serialize()
    assert deferred.value.method_name == "execute_complete"

    def rebuild() -> Any:
        # What a triggerer does with the row it picks up: the class from its path, the
        # serialized kwargs.
        module, _, cls = classpath.rpartition(".")
        return getattr(importlib.import_module(module), cls)(**kwargs)

    async def first_event(trigger: Any) -> Any:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    config = Configuration()
    load_kube_config(config_file=str(cluster.kubeconfig_path), client_configuration=config)
    with ApiClient(config) as client:
        core, api = CoreV1Api(client), TaskRunApi(client)

        name = mapping.taskrun_name("restart", "slow", "manual__triggerer_restart", -1, 1)

        def run_running() -> bool:
            # The TaskRun's phase, not the pod's: the controller reports a running pod a
            # moment later, more so on a busy machine with a real node.
            pods = core.list_namespaced_pod(namespace).items
            phase = ((api.get(name, namespace) or {}).get("status") or {}).get("phase")
            return bool(pods) and pods[0].status.phase == "Running" and phase == "Running"

        def watches() -> int:
            return cluster.requests.count(verb="watch", resource="taskruns", namespace=namespace)

        async def first_triggerer() -> None:
            trigger = rebuild()
            task = asyncio.ensure_future(first_event(trigger))
            while not (watches() and run_running()):
                assert not task.done(), task.result()
                await asyncio.sleep(0.05)
            # Shutdown: the runner cancels the trigger's task (no user action, so no
            # on_kill), then calls cleanup().
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await trigger.cleanup()

        asyncio.run(first_triggerer())
        assert (api.get(name, namespace).get("status") or {}).get("phase") == "Running"

        gets = cluster.requests.count(verb="get", resource="taskruns", namespace=namespace)
        event = asyncio.run(asyncio.wait_for(first_event(rebuild()), 60))
        assert event.payload["status"] == "done", event.payload
        assert event.payload["phase"] == "Succeeded"

        # A fresh worker resumes the task with the event.
        with caplog.at_level(logging.INFO, logger=task_log.name):
            result = operator().execute_complete(context, event=event.payload)
        assert result == {"done": True}
        # The new trigger watched from the created version (the server replayed what it
        # missed) and the event carried the finished TaskRun: neither read it.
        assert cluster.requests.count(verb="get", resource="taskruns", namespace=namespace) == gets
        assert xcom["taskrun_name"] == name
        assert xcom["pod_name"] == f"{name}-1"
        assert xcom["pod_namespace"] == namespace
        shown = [r.getMessage() for r in caplog.records if r.name == task_log.name]
        assert [m for m in shown if m.startswith("[base]")] == [f"[base] {x}" for x in lines]
        assert not any("is gone" in m for m in shown)
        # Exactly one pod, created once (answered 201).
        created = cluster.requests.count(
            verb="create", resource="pods", subresource="", namespace=namespace
        )
        assert created == 1
        assert (
            cluster.requests.count(
                verb="create", resource="pods", subresource="", namespace=namespace, code=201
            )
            == 1
        )
        # The whole log came with the finished TaskRun: the pod went without an ack.
        annotations = api.get(name, namespace)["metadata"]["annotations"]
        assert ANNOTATION_LOGS_ACKED not in annotations
        _wait(lambda: not api.pod_exists(f"{name}-1", namespace), 30, "the pod to go")
