"""A worker that meets a TaskRun of its name reattaches only if it is its own (issue 13.4).

Against devcluster without a controller: the test plays the controller (it writes status)
and the other creator (it makes the TaskRun that is in the way). Ours: the identity labels
and the spec-hash annotation of what the operator would create, with that very spec.
Foreign: another task instance's labels, another hash, no hash, or a spec changed under a
copied hash. Both the blocking and the deferrable paths.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("airflow.providers.cncf.kubernetes")
pytest.importorskip("devcluster")

from airflow_devcluster import api_client_for, crd_devcluster, faults_in, first_event, new_namespace
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiTypeError

from devcluster import DevCluster
from taskrun.airflow.client import TaskRunApi
from taskrun.airflow.compat import AirflowException, TaskDeferred
from taskrun.airflow.operator import TaskRunOperator
from taskrun.api import ANNOTATION_SPEC_HASH, GROUP, PLURAL, VERSION, spec_hash

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(60)]
RESULT = '{"rows": 42}'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with crd_devcluster(tmp_path_factory.mktemp("kube"), kubelet=False) as dc:
        yield dc


@pytest.fixture
def api(cluster: DevCluster) -> Iterator[TaskRunApi]:
    with api_client_for(cluster) as client:
        yield TaskRunApi(client)


@pytest.fixture
def namespace(cluster: DevCluster) -> str:
    return new_namespace(cluster, "reattach")


class TI(types.SimpleNamespace):
    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def _context() -> dict[str, Any]:
    ti = TI(dag_id="dag", task_id="load", try_number=1, map_index=-1, xcom={})
    return {"ti": ti, "run_id": "manual__reattach"}


def _operator(cluster: DevCluster, namespace: str, **kwargs: Any) -> TaskRunOperator:
    return TaskRunOperator(
        task_id="load",
        image="busybox",
        namespace=namespace,
        config_file=str(cluster.kubeconfig_path),
        do_xcom_push=True,
        **kwargs,
    )


def _finish(api: TaskRunApi, name: str, namespace: str) -> None:
    # What the controller would write: a finished run with a result, its pod gone.
    status = {"phase": "Succeeded", "podName": f"{name}-1", "result": RESULT, "exitCode": 0}
    args = (GROUP, VERSION, namespace, PLURAL, name, {"status": status})
    custom = CustomObjectsApi(api._custom.api_client)
    try:
        custom.patch_namespaced_custom_object_status(
            *args, _content_type="application/merge-patch+json"
        )
    except ApiTypeError:  # kubernetes < 35 (Airflow 2.10): a merge patch by default
        custom.patch_namespaced_custom_object_status(*args)


def _other_labels(body: dict[str, Any]) -> None:
    body["metadata"]["labels"]["dag_id"] = "someone-else"


def _other_hash(body: dict[str, Any]) -> None:
    body["spec"]["image"] = "evil:latest"
    body["metadata"]["annotations"][ANNOTATION_SPEC_HASH] = spec_hash(body["spec"])


def _no_hash(body: dict[str, Any]) -> None:
    del body["metadata"]["annotations"][ANNOTATION_SPEC_HASH]


def _spec_changed_under_our_hash(body: dict[str, Any]) -> None:
    # Names and the hash are computable by anyone who reads the DAG: the stored spec is
    # what the controller runs, so it must hash to the annotation too.
    body["spec"]["image"] = "evil:latest"


FOREIGN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("other_labels", _other_labels, "label dag_id='someone-else'"),
    ("other_hash", _other_hash, "is not the hash of the spec"),
    ("no_hash", _no_hash, f"has no {ANNOTATION_SPEC_HASH} annotation"),
    ("spec_changed", _spec_changed_under_our_hash, "spec does not match"),
]


def _put_in_the_way(
    api: TaskRunApi, op: TaskRunOperator, context: dict[str, Any], change: Callable | None
) -> tuple[str, str]:
    body = copy.deepcopy(op.build_taskrun(context))
    if change is not None:
        change(body)
    _, created = api.create_or_get(body)
    assert created
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    _finish(api, name, namespace)
    return name, namespace


def test_ours_reattaches_and_returns_its_result(
    cluster: DevCluster, api: TaskRunApi, namespace: str
) -> None:
    op, context = _operator(cluster, namespace), _context()
    name, _ = _put_in_the_way(api, op, context, None)
    assert op.execute(context) == {"rows": 42}
    assert context["ti"].xcom["taskrun_name"] == name
    # The operator's create met the TaskRun (409) and read it: no second TaskRun.
    creates = cluster.requests.filter(verb="create", resource="taskruns", namespace=namespace)
    assert [r.code for r in creates] == [201, 409]


@pytest.mark.parametrize(("case", "change", "why"), FOREIGN, ids=[f[0] for f in FOREIGN])
def test_a_foreign_taskrun_fails_the_task(
    cluster: DevCluster,
    api: TaskRunApi,
    namespace: str,
    case: str,
    change: Callable[[dict[str, Any]], None],
    why: str,
) -> None:
    op, context = _operator(cluster, namespace), _context()
    name, _ = _put_in_the_way(api, op, context, change)
    with pytest.raises(AirflowException) as failed:
        op.execute(context)
    message = str(failed.value)
    assert f"TaskRun {namespace}/{name} already exists" in message
    assert why in message
    assert f"kubectl delete taskrun -n {namespace} {name}" in message
    # Nothing of it reaches the task: no result, no XCom; a kill leaves it alone.
    assert context["ti"].xcom == {}
    patches = cluster.requests.count(verb="patch", resource="taskruns", namespace=namespace)
    op.on_kill()
    assert cluster.requests.count(verb="patch", resource="taskruns", namespace=namespace) == patches
    assert api.get(name, namespace)["spec"].get("cancel") is not True


def _kubeconfig(cluster: DevCluster) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(Path(str(cluster.kubeconfig_path)).read_text())


def test_deferrable_ours_reattaches_and_returns_its_result(
    cluster: DevCluster, api: TaskRunApi, namespace: str
) -> None:
    op, context = _operator(cluster, namespace, deferrable=True), _context()
    _put_in_the_way(api, op, context, None)
    # Finished before the worker came back: it may resume without deferring...
    finished = op.execute(context)
    assert finished == {"rows": 42}

    # ... and one still running defers to the trigger, which brings the result back.
    op2, context2 = _operator(cluster, namespace, deferrable=True, name="second"), _context()
    body = op2.build_taskrun(context2)
    api.create_or_get(body)
    with pytest.raises(TaskDeferred) as deferred:
        op2.execute(context2)
    trigger = deferred.value.trigger
    _finish(api, body["metadata"]["name"], namespace)
    event = first_event(trigger)
    assert event["status"] == "done"
    assert op2.execute_complete(context2, event) == {"rows": 42}


@pytest.mark.parametrize(("case", "change", "why"), FOREIGN, ids=[f[0] for f in FOREIGN])
def test_deferrable_a_foreign_taskrun_fails_before_deferring(
    cluster: DevCluster,
    api: TaskRunApi,
    namespace: str,
    case: str,
    change: Callable[[dict[str, Any]], None],
    why: str,
) -> None:
    op, context = _operator(cluster, namespace, deferrable=True), _context()
    body = copy.deepcopy(op.build_taskrun(context))
    change(body)
    api.create_or_get(body)  # still running: a deferrable task would defer on it
    with pytest.raises(AirflowException) as failed:
        op.execute(context)
    assert not isinstance(failed.value, TaskDeferred)
    assert why in str(failed.value)
    assert cluster.requests.count(verb="watch", resource="taskruns", namespace=namespace) == 0


def test_deferred_task_does_not_follow_a_replacement(
    cluster: DevCluster, api: TaskRunApi, namespace: str
) -> None:
    # Ours is created and the task defers; then it is deleted and another TaskRun takes its
    # name, and the history the trigger would resume from is gone (410): the trigger reads
    # the newcomer, and must not report its result as ours.
    op, context = _operator(cluster, namespace, deferrable=True), _context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    name = trigger.name
    assert trigger.uid
    api.delete(name, namespace)
    body = copy.deepcopy(op.build_taskrun(context))
    body["spec"]["image"] = "evil:latest"
    _, created = api.create_or_get(body)
    assert created
    _finish(api, name, namespace)
    with faults_in(cluster, namespace, force_410_on_resume=True):
        event = first_event(trigger)
    assert event["status"] == "error"
    assert "another TaskRun now has its name" in event["message"]

    # An event without the TaskRun (too large to carry) makes the task read it: the uid
    # the event carries tells the newcomer apart.
    done = {"status": "done", "name": name, "namespace": namespace, "phase": "Succeeded"}
    with pytest.raises(AirflowException, match="another TaskRun has its name"):
        op.execute_complete(context, {**done, "uid": trigger.uid})
