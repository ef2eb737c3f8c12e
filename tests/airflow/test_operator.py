"""TaskRunOperator and TaskRunTrigger against an in-memory TaskRun API (no cluster).

The fake keeps TaskRuns and pod logs in dicts and moves a TaskRun through scripted phases
each time the operator waits; what it records (creates, patches, deletes) is asserted.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("airflow.providers.cncf.kubernetes")

from taskrun.airflow import mapping
from taskrun.airflow import trigger as trigger_module
from taskrun.airflow.client import TaskRunGone
from taskrun.airflow.compat import AirflowException, AirflowSkipException
from taskrun.airflow.operator import TaskRunOperator
from taskrun.airflow.trigger import TaskRunTrigger
from taskrun.api import (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
    ANNOTATION_SPEC_HASH,
    spec_hash,
)
from tests.airflow.conftest import needs_reference_kpo

RUN_ID = "manual__2026-11-24T04:00:00+00:00"


class FakeApi:
    """In-memory TaskRunApi: each wait_for applies the next scripted status."""

    def __init__(self, statuses: list[dict[str, Any]], logs: dict[str, bytes] | None = None):
        self.statuses = list(statuses)
        self.logs = logs or {}
        self.pods: set[str] = set(self.logs)
        self.taskruns: dict[tuple[str, str], dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self.patches: list[dict[str, Any]] = []
        self.deletes: list[tuple[str, str]] = []
        self.follow_breaks_after: int | None = None
        self.waits: list[Any] = []
        self.gets = 0
        self.log_reads: list[tuple[str, str]] = []

    def create_or_get(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        key = (body["metadata"]["name"], body["metadata"]["namespace"])
        if key in self.taskruns:
            return copy.deepcopy(self.taskruns[key]), False
        self.creates.append(body)
        self.taskruns[key] = {**copy.deepcopy(body), "status": {"phase": "Pending"}}
        self.taskruns[key]["metadata"]["resourceVersion"] = "7"
        return copy.deepcopy(self.taskruns[key]), True

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        self.gets += 1
        return copy.deepcopy(self.taskruns[(name, namespace)])

    def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        return copy.deepcopy(self.taskruns[(name, namespace)])

    def delete(self, name: str, namespace: str) -> None:
        self.deletes.append((name, namespace))

    def wait_for(
        self, name: str, namespace: str, predicate: Any, known: Any = None
    ) -> dict[str, Any]:
        self.waits.append(known)
        while True:
            taskrun = self.taskruns[(name, namespace)]
            if predicate(taskrun):
                return copy.deepcopy(taskrun)
            if not self.statuses:
                raise AssertionError("the operator waited past the end of the script")
            taskrun["status"] = self.statuses.pop(0)

    def read_log(self, pod: str, namespace: str, container: str) -> bytes | None:
        self.log_reads.append((pod, container))
        if pod not in self.pods:
            return None  # 404
        return self.logs.get(pod, b"") if container == "base" else f"{container} log\n".encode()

    def follow_log(self, pod: str, namespace: str, container: str) -> Iterator[bytes]:
        data = self.logs.get(pod, b"")
        if self.follow_breaks_after is None:
            yield data
            return
        yield data[: self.follow_breaks_after]
        raise ConnectionError("stream reset")


class FakeTI:
    def __init__(self, try_number: int = 1, map_index: int = -1) -> None:
        self.dag_id = "dag"
        self.task_id = "task"
        self.try_number = try_number
        self.map_index = map_index
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def make_op(api: FakeApi, **kwargs: Any) -> TaskRunOperator:
    op = TaskRunOperator(task_id="task", namespace="ns", image="busybox", **kwargs)
    op.__dict__["api"] = api
    op.__dict__["hook"] = types.SimpleNamespace(is_in_cluster=False, get_namespace=lambda: None)
    return op


@pytest.fixture(autouse=True)
def plain_task_log(monkeypatch: pytest.MonkeyPatch) -> None:
    # Airflow 3 logs through structlog, which caplog does not see; the task log is a plain
    # logger here.
    logger = logging.getLogger("test.taskrun.operator")
    monkeypatch.setattr(TaskRunOperator, "log", property(lambda self: logger))


def context(ti: FakeTI | None = None) -> dict[str, Any]:
    return {"ti": ti or FakeTI(), "run_id": RUN_ID}


RUNNING = {"phase": "Running", "podName": "p-1"}


def done(phase: str, **extra: Any) -> dict[str, Any]:
    return {"phase": phase, "podName": "p-1", **extra}


ACK = {"metadata": {"annotations": {ANNOTATION_LOGS_ACKED: "true"}}}


def shown(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]


def test_success_returns_result_pushes_keys_streams_log_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi([RUNNING, done("Succeeded", result='{"rows": 3}')], logs={"p-1": b"one\ntwo\n"})
    op = make_op(api, do_xcom_push=True)
    ti = FakeTI()
    with caplog.at_level(logging.INFO):
        result = op.execute(context(ti))
    assert result == {"rows": 3}
    name = api.creates[0]["metadata"]["name"]
    assert ti.xcom == {"taskrun_name": name, "pod_namespace": "ns", "pod_name": "p-1"}
    # Streamed live, then caught up from the held pod: each line exactly once.
    assert shown(caplog) == ["[base] one", "[base] two"]
    assert api.patches == [ACK]
    # No reads: the first wait starts from the create's answer, the second from the Running
    # version the first returned; the log read doubles as the pod check.
    assert api.gets == 0
    assert [w["status"]["phase"] for w in api.waits] == ["Pending", "Running"]
    assert api.waits[0]["metadata"]["resourceVersion"] == "7"
    assert api.log_reads == [("p-1", "base")]
    meta = api.creates[0]["metadata"]
    # The status held no whole log (no status.logs.complete): read from the pod, acked.
    assert meta["annotations"] == {
        ANNOTATION_HOLD_POD: "true",
        ANNOTATION_LOGS_FROM_STATUS: "true",
        ANNOTATION_SPEC_HASH: spec_hash(api.creates[0]["spec"]),
    }
    assert meta["labels"]["dag_id"] == "dag"
    assert api.creates[0]["spec"]["labels"]["airflow_kpo_in_cluster"] == "False"


def test_dropped_log_stream_is_caught_up_without_duplicates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi([RUNNING, done("Succeeded")], logs={"p-1": b"a\nb\nc\nd\n"})
    api.follow_breaks_after = 5  # "a\nb\nc" arrives; "c" is an incomplete line
    with caplog.at_level(logging.INFO):
        make_op(api).execute(context())
    assert shown(caplog) == ["[base] a", "[base] b", "[base] c", "[base] d"]


def test_no_result_without_do_xcom_push() -> None:
    api = FakeApi([done("Succeeded", result="[1]")], logs={"p-1": b""})
    assert make_op(api).execute(context()) is None


def test_empty_result_is_none() -> None:
    api = FakeApi([done("Succeeded", result="")], logs={"p-1": b""})
    assert make_op(api, do_xcom_push=True).execute(context()) is None


def test_skipped_raises_skip() -> None:
    api = FakeApi([done("Skipped", exitCode=99)], logs={"p-1": b""})
    with pytest.raises(AirflowSkipException, match="exit code 99"):
        make_op(api, skip_on_exit_code=99).execute(context())


def test_failed_raises_with_reason_message_and_tail() -> None:
    status = done(
        "Failed",
        reason="ExitCode",
        message="base exited with 3",
        logs={"tail": "Traceback\nValueError: boom"},
    )
    api = FakeApi([status])  # the pod is gone: the tail from status is all there is
    with pytest.raises(AirflowException) as info:
        make_op(api).execute(context())
    text = str(info.value)
    assert "Failed: ExitCode: base exited with 3" in text
    assert "ValueError: boom" in text
    assert api.patches == [ACK]


def test_gone_pod_is_one_log_read_then_the_tail(caplog: pytest.LogCaptureFixture) -> None:
    status = done("Succeeded", logs={"tail": "last\nlines"})
    api = FakeApi([status])  # no pod: its log read is a 404
    with caplog.at_level(logging.INFO):
        make_op(api, init_container_logs=["init"]).execute(context())
    assert api.log_reads == [("p-1", "init")]
    assert shown(caplog) == ["[base] last", "[base] lines"]
    assert api.patches == [ACK]


def test_reattach_creates_nothing_and_uses_the_same_name() -> None:
    api = FakeApi([done("Succeeded"), done("Succeeded")], logs={"p-1": b""})
    make_op(api).execute(context())
    make_op(api).execute(context())
    assert len(api.creates) == 1


def test_next_try_is_a_new_taskrun() -> None:
    api = FakeApi([done("Succeeded"), done("Succeeded")], logs={"p-1": b""})
    make_op(api).execute(context(FakeTI(try_number=1)))
    make_op(api).execute(context(FakeTI(try_number=2)))
    names = [c["metadata"]["name"] for c in api.creates]
    assert len(names) == 2
    assert names[0] != names[1]


def test_deleted_taskrun_fails_the_task() -> None:
    api = FakeApi([])

    def gone(name: str, namespace: str, predicate: Any, known: Any = None) -> Any:
        raise TaskRunGone(name, namespace)

    api.wait_for = gone  # type: ignore[method-assign]
    with pytest.raises(AirflowException, match="was deleted"):
        make_op(api).execute(context())


def test_get_logs_false_neither_holds_nor_acks() -> None:
    api = FakeApi([done("Succeeded")], logs={"p-1": b"x\n"})
    make_op(api, get_logs=False).execute(context())
    assert ANNOTATION_HOLD_POD not in api.creates[0]["metadata"]["annotations"]
    assert api.patches == []


def test_container_logs_true_shows_every_container(caplog: pytest.LogCaptureFixture) -> None:
    template = {"spec": {"containers": [{"name": "base"}, {"name": "helper", "image": "h"}]}}
    api = FakeApi([done("Succeeded")], logs={"p-1": b"main\n"})
    with caplog.at_level(logging.INFO):
        make_op(api, pod_template_dict=template, container_logs=True).execute(context())
    assert shown(caplog) == ["[base] main", "[helper] helper log"]


@pytest.mark.parametrize(
    ("action", "patches", "deletes"),
    [
        ("cancel", [mapping.CANCEL_PATCH], 0),
        ("delete", [], 1),
        ("delete_pod", [], 1),
        ("keep_pod", [], 0),
    ],
)
def test_on_kill(action: str, patches: list[Any], deletes: int) -> None:
    api = FakeApi([done("Succeeded")], logs={"p-1": b""})
    op = make_op(api, on_kill_action=action)
    op.execute(context())
    api.patches.clear()
    op.on_kill()
    assert api.patches == patches
    assert len(api.deletes) == deletes


def test_init_container_logs_come_first(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeApi([done("Succeeded")], logs={"p-1": b"main\n"})
    op = make_op(
        api,
        init_containers=[{"name": "setup", "image": "busybox"}],
        init_container_logs=True,
    )
    with caplog.at_level(logging.INFO):
        op.execute(context())
    assert shown(caplog) == ["[setup] setup log", "[base] main"]


def test_trigger_kwargs_are_ignored_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="trigger_kwargs"):
        op = TaskRunOperator(task_id="t", image="i", deferrable=True, trigger_kwargs={"x": 1})
    assert op.trigger_kwargs == {"x": 1}


def test_on_kill_before_create_does_nothing() -> None:
    api = FakeApi([])
    make_op(api).on_kill()
    assert api.patches == [] and api.deletes == []


def test_unknown_on_kill_action_and_callbacks_are_refused() -> None:
    with pytest.raises(ValueError, match="on_kill_action"):
        TaskRunOperator(task_id="t", image="i", on_kill_action="explode")
    with pytest.raises(ValueError, match="callbacks"):
        TaskRunOperator(task_id="t", image="i", progress_callback=print)


def test_deferrable_defers_to_the_trigger_then_prints_full_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from taskrun.airflow.compat import TaskDeferred

    api = FakeApi([], logs={"p-1": b"l1\nl2\n"})
    op = make_op(api, deferrable=True, on_kill_action="delete", do_xcom_push=True)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context())
    trigger = info.value.trigger
    assert isinstance(trigger, TaskRunTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "taskrun.airflow.trigger.TaskRunTrigger"
    assert kwargs["on_kill_action"] == "delete"
    # The trigger watches from the created version: it need not read the TaskRun first.
    assert kwargs["resource_version"] == "7"
    assert info.value.method_name == "execute_complete"

    name = kwargs["name"]
    api.taskruns[(name, "ns")]["status"] = done("Succeeded", result='"ok"')
    # An event without the TaskRun (too large for an event, or from an older trigger): read.
    event = {"status": "done", "name": name, "namespace": "ns", "phase": "Succeeded"}
    with caplog.at_level(logging.INFO):
        assert op.execute_complete(context(), event) == "ok"
    assert shown(caplog) == ["[base] l1", "[base] l2"]
    assert api.patches == [ACK]
    assert api.gets == 1

    # The event carries the finished TaskRun: no read on resume.
    event["taskrun"] = api.get(name, "ns")
    event["taskrun"]["status"]["result"] = '"from the event"'
    api.gets = 0
    assert op.execute_complete(context(), event) == "from the event"
    assert api.gets == 0
    assert api.log_reads[-1] == ("p-1", "base")


def test_execute_complete_error_event_fails() -> None:
    op = make_op(FakeApi([]))
    event = {"status": "error", "name": "n", "namespace": "ns", "message": "watch broke"}
    with pytest.raises(AirflowException, match="watch broke"):
        op.execute_complete(context(), event)


def test_dry_run_prints_a_taskrun(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    make_op(FakeApi([]), name="My_Pod", env_vars={"A": "1"}).dry_run()
    body = yaml.safe_load(capsys.readouterr().out)
    assert body["kind"] == "TaskRun"
    assert body["metadata"]["generateName"] == "my-pod-"
    assert body["spec"]["envVars"] == [{"name": "A", "value": "1"}]
    assert "labels" not in body["spec"]


@needs_reference_kpo()
def test_template_fields_are_kpos() -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    assert tuple(TaskRunOperator.template_fields) == tuple(KubernetesPodOperator.template_fields)


@needs_reference_kpo()
def test_constructor_accepts_every_kpo_parameter_with_kpos_default() -> None:
    import inspect

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    ours = inspect.signature(TaskRunOperator.__init__).parameters
    theirs = inspect.signature(KubernetesPodOperator.__init__).parameters
    missing = set(theirs) - set(ours)
    assert not missing
    # on_kill_action keeps KPO's name but defaults to cancelling (see the migration guide).
    differing = {
        n
        for n, p in theirs.items()
        if p.default is not ours[n].default and p.default != ours[n].default
    }
    assert differing == {"on_kill_action"}


# --- the trigger -------------------------------------------------------------------------------


class FakeAsyncApi:
    def __init__(self, versions: list[dict[str, Any]]) -> None:
        self.versions = versions
        self.watched_from: str | None = None
        self.patches: list[dict[str, Any]] = []
        self.deletes = 0

    async def watch(
        self,
        name: str,
        namespace: str,
        resource_version: str | None = None,
        uid: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        self.watched_from = resource_version
        for version in self.versions:
            yield version

    async def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> None:
        self.patches.append(patch)

    async def delete(self, name: str, namespace: str) -> None:
        self.deletes += 1


@pytest.fixture
def fake_async(monkeypatch: pytest.MonkeyPatch) -> Any:
    holder: dict[str, FakeAsyncApi] = {}

    class Conn:
        async def __aenter__(self) -> object:
            return object()

        async def __aexit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(TaskRunTrigger, "_hook", lambda self: types.SimpleNamespace(get_conn=Conn))
    monkeypatch.setattr(trigger_module, "AsyncTaskRunApi", lambda _client: holder["api"])
    return holder


def _trigger(**kw: Any) -> TaskRunTrigger:
    return TaskRunTrigger(name="n", namespace="ns", **kw)


async def _events(trigger: TaskRunTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def test_trigger_fires_once_at_the_terminal_phase(fake_async: Any) -> None:
    versions = [
        {"metadata": {"name": "n", "resourceVersion": str(i), "managedFields": [{}]}, "status": s}
        for i, s in enumerate(
            [{"phase": "Pending"}, {"phase": "Running"}, {"phase": "Failed", "exitCode": 3}]
        )
    ]
    fake_async["api"] = api = FakeAsyncApi([*versions, versions[-1]])
    events = asyncio.run(_events(_trigger(resource_version="5")))
    # The finished TaskRun rides along (without managedFields): no read on resume.
    finished = {"metadata": {"name": "n", "resourceVersion": "2"}, "status": versions[2]["status"]}
    assert events == [
        {
            "status": "done",
            "name": "n",
            "namespace": "ns",
            "phase": "Failed",
            "message": "",
            "taskrun": finished,
        }
    ]
    assert api.watched_from == "5"


def test_trigger_leaves_a_large_taskrun_out_of_the_event(fake_async: Any) -> None:
    big = {"phase": "Succeeded", "result": "x" * trigger_module.EVENT_TASKRUN_MAX_BYTES}
    fake_async["api"] = FakeAsyncApi([{"metadata": {"name": "n"}, "status": big}])
    (event,) = asyncio.run(_events(_trigger()))
    assert event["phase"] == "Succeeded"
    assert "taskrun" not in event


def test_trigger_reports_a_watch_that_ends(fake_async: Any) -> None:
    fake_async["api"] = FakeAsyncApi([{"status": {"phase": "Running"}}])
    (event,) = asyncio.run(_events(_trigger()))
    assert event["status"] == "error"
    assert "ended before the TaskRun finished" in event["message"]


def test_trigger_reports_a_deleted_taskrun(fake_async: Any) -> None:
    class Gone(FakeAsyncApi):
        async def watch(
            self,
            name: str,
            namespace: str,
            resource_version: str | None = None,
            uid: str | None = None,
        ) -> AsyncIterator[dict[str, Any]]:
            yield {"status": {"phase": "Running"}}
            raise TaskRunGone(name, namespace)

    fake_async["api"] = Gone([])
    (event,) = asyncio.run(_events(_trigger()))
    assert event["status"] == "error"
    assert "was deleted" in event["message"]


@pytest.mark.parametrize(
    ("action", "patches", "deletes"),
    [("cancel", [mapping.CANCEL_PATCH], 0), ("delete", [], 1), ("keep_pod", [], 0)],
)
def test_trigger_on_kill(fake_async: Any, action: str, patches: list[Any], deletes: int) -> None:
    fake_async["api"] = api = FakeAsyncApi([])
    asyncio.run(_trigger(on_kill_action=action).on_kill())
    assert api.patches == patches
    assert api.deletes == deletes


def test_trigger_serialises_to_its_own_arguments() -> None:
    trigger = _trigger(
        kubernetes_conn_id="k8s",
        config_dict={"apiVersion": "v1"},
        on_kill_action="delete",
        resource_version="42",
        uid="0b5c1f9e",
    )
    classpath, kwargs = trigger.serialize()
    module, _, cls = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[cls]), cls)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
