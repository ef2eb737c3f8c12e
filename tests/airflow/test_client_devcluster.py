"""The operator's and the trigger's Kubernetes calls against devcluster, without a controller.

The test plays the controller: it writes TaskRun status itself and creates the pod, so what is
checked is the wire behaviour of taskrun.airflow.client (409 reattach, merge patches, watches
with a field selector, followed logs) and of the trigger with the provider's async hook.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("airflow.providers.cncf.kubernetes")
pytest.importorskip("devcluster")

from airflow_devcluster import api_client_for, crd_devcluster, faults_in, first_event, new_namespace
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from devcluster import DevCluster
from taskrun.airflow import mapping
from taskrun.airflow.client import TaskRunApi
from taskrun.airflow.trigger import TaskRunTrigger
from taskrun.api import ANNOTATION_HOLD_POD, ANNOTATION_LOGS_ACKED, ANNOTATION_SPEC_HASH, spec_hash

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with crd_devcluster(tmp_path_factory.mktemp("kube")) as dc:
        yield dc


@pytest.fixture
def api_client(cluster: DevCluster) -> Iterator[ApiClient]:
    with api_client_for(cluster) as client:
        yield client


@pytest.fixture
def namespace(cluster: DevCluster) -> str:
    return new_namespace(cluster, "client")


def _taskrun(namespace: str, name: str = "tr-1", **spec: Any) -> dict[str, Any]:
    return mapping.build_taskrun(
        {"image": "busybox", **spec},
        name=name,
        namespace=namespace,
        annotations={ANNOTATION_HOLD_POD: "true"},
    )


def _set_status(api_client: ApiClient, namespace: str, name: str, status: dict) -> None:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiTypeError

    args = ("taskrun.dev", "v1alpha1", namespace, "taskruns", name, {"status": status})
    api = CustomObjectsApi(api_client)
    try:
        api.patch_namespaced_custom_object_status(
            *args, _content_type="application/merge-patch+json"
        )
    except ApiTypeError:  # kubernetes < 35 (Airflow 2.10): a merge patch by default
        api.patch_namespaced_custom_object_status(*args)


def test_create_then_reattach(api_client: ApiClient, namespace: str, cluster: DevCluster) -> None:
    api = TaskRunApi(api_client)
    first, created = api.create_or_get(_taskrun(namespace))
    second, created_again = api.create_or_get(_taskrun(namespace))
    assert (created, created_again) == (True, False)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert cluster.requests.count(verb="create", resource="taskruns", namespace=namespace) == 2


def test_transient_api_answers_are_tried_again(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    cluster.faults.reseed(11)  # the same failures every run
    cluster.faults.namespaces = frozenset({namespace})
    cluster.faults.error_rate = 0.3
    cluster.faults.error_codes = (500, 503)
    cluster.faults.throttle_rate = 0.1  # 429 with Retry-After: 1
    try:
        for i in range(3):
            taskrun, created = api.create_or_get(_taskrun(namespace, f"flaky-{i}"))
            assert created or taskrun["metadata"]["name"] == f"flaky-{i}"
            assert api.get(f"flaky-{i}", namespace)["spec"]["image"] == "busybox"
            assert api.patch(f"flaky-{i}", namespace, mapping.CANCEL_PATCH)["spec"]["cancel"]
            api.delete(f"flaky-{i}", namespace)
    finally:
        cluster.faults.clear()
    codes = [r.code for r in cluster.requests.filter(namespace=namespace)]
    # the faults happened (a 429 among them), and every call above still succeeded
    failed = [c for c in codes if c in (429, 500, 503)]
    assert len(failed) >= 3 and 429 in failed, codes


def test_the_trigger_tries_transient_answers_again(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    api.create_or_get(_taskrun(namespace, "async-flaky"))
    trigger = TaskRunTrigger(
        name="async-flaky", namespace=namespace, config_dict=_kubeconfig(cluster)
    )
    cluster.faults.namespaces = frozenset({namespace})
    cluster.faults.verbs = frozenset({"patch"})
    cluster.faults.error_rate = 1.0
    cluster.faults.error_codes = (503,)

    def heal() -> None:
        # The trigger first builds its async client: slow on a loaded machine.
        _wait_until(lambda: cluster.requests.count(namespace=namespace, code=503) >= 2, 50)
        cluster.faults.clear()

    healer = threading.Thread(target=heal)
    healer.start()
    try:
        asyncio.run(trigger.on_kill())  # on_kill_action cancel: one merge patch
    finally:
        healer.join()
        cluster.faults.clear()
    assert api.get("async-flaky", namespace)["spec"]["cancel"] is True
    assert cluster.requests.count(namespace=namespace, code=503) >= 2


def test_a_refusal_is_not_tried_again(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    forbidden = faults_in(cluster, namespace, error_rate=1.0, error_codes=(403,))
    with forbidden, pytest.raises(ApiException) as refused:
        api.get("anything", namespace)
    assert refused.value.status == 403
    assert cluster.requests.count(namespace=namespace, resource="taskruns") == 1


def test_merge_patch_keeps_other_annotations(api_client: ApiClient, namespace: str) -> None:
    api = TaskRunApi(api_client)
    api.create_or_get(_taskrun(namespace))
    patched = api.patch("tr-1", namespace, mapping.CANCEL_PATCH)
    assert patched["spec"]["cancel"] is True
    assert patched["spec"]["image"] == "busybox"
    assert patched["metadata"]["annotations"] == {
        ANNOTATION_HOLD_POD: "true",
        ANNOTATION_LOGS_ACKED: "true",
        ANNOTATION_SPEC_HASH: spec_hash(patched["spec"]),
    }


def test_wait_for_watches_until_the_predicate_holds(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    api.create_or_get(_taskrun(namespace))
    api.create_or_get(_taskrun(namespace, name="tr-other"))
    watching = threading.Event()

    def controller() -> None:
        # Changes made after the waiter's read reach it through the watch, which resumes at
        # that read's resourceVersion.
        _wait_until(lambda: _gets(cluster, namespace) >= 1)
        watching.set()
        _set_status(api_client, namespace, "tr-other", {"phase": "Succeeded"})
        _set_status(api_client, namespace, "tr-1", {"phase": "Running", "podName": "p"})
        _set_status(api_client, namespace, "tr-1", {"phase": "Failed", "reason": "ExitCode"})

    thread = threading.Thread(target=controller)
    thread.start()
    done = api.wait_for(
        "tr-1", namespace, lambda tr: (tr.get("status") or {}).get("phase") == "Failed"
    )
    thread.join()
    assert watching.is_set()
    assert done["status"]["reason"] == "ExitCode"
    # One read, then the watch: no polling.
    assert _gets(cluster, namespace) == 1


def test_logs_full_and_followed(api_client: ApiClient, namespace: str) -> None:
    scenario = {"runSeconds": 0.3, "logs": "first\nsecond\nthird\n"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": namespace,
            "annotations": {"devcluster.taskrun.dev/scenario": json.dumps(scenario)},
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox"}]},
    }
    CoreV1Api(api_client).create_namespaced_pod(namespace, pod)
    api = TaskRunApi(api_client)
    _wait_until(lambda: _phase(api_client, namespace) in ("Running", "Succeeded"))
    followed = b"".join(api.follow_log("p", namespace, "base"))
    assert followed == b"first\nsecond\nthird\n"
    assert api.read_log("p", namespace, "base") == followed
    assert api.pod_exists("p", namespace)
    assert not api.pod_exists("nope", namespace)
    # A gone pod is a 404 (None): the log read is the existence check. A container that is
    # not there is a 400 (empty).
    assert api.read_log("nope", namespace, "base") is None
    assert api.read_log("p", namespace, "other") == b""


def test_trigger_fires_on_terminal_phase_and_cancels_on_kill(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    api.create_or_get(_taskrun(namespace))
    trigger = TaskRunTrigger(name="tr-1", namespace=namespace, config_dict=_kubeconfig(cluster))

    def controller() -> None:
        _wait_until(lambda: _gets(cluster, namespace) >= 1)
        _set_status(api_client, namespace, "tr-1", {"phase": "Running"})
        _set_status(api_client, namespace, "tr-1", {"phase": "Succeeded"})

    thread = threading.Thread(target=controller)
    thread.start()
    payload = first_event(trigger)
    thread.join()
    taskrun = payload.pop("taskrun")
    assert payload == {
        "status": "done",
        "name": "tr-1",
        "namespace": namespace,
        "phase": "Succeeded",
        "message": "",
    }
    assert taskrun["status"]["phase"] == "Succeeded"
    assert taskrun["metadata"]["name"] == "tr-1"
    assert "managedFields" not in taskrun["metadata"]

    asyncio.run(trigger.on_kill())
    assert api.get("tr-1", namespace)["spec"]["cancel"] is True


def test_wait_from_a_known_version_replays_without_reading(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    created, _ = api.create_or_get(_taskrun(namespace))
    # Finished before the watch opens: the server replays it from the created version.
    _set_status(api_client, namespace, "tr-1", {"phase": "Running", "podName": "p"})
    _set_status(api_client, namespace, "tr-1", {"phase": "Succeeded"})
    done = api.wait_for("tr-1", namespace, _phase_is("Succeeded"), known=created)
    assert done["status"]["phase"] == "Succeeded"
    assert _gets(cluster, namespace) == 0
    assert _watches(cluster, namespace) == 1


def test_wait_resumes_ended_watches_and_reads_only_on_410(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    created, _ = api.create_or_get(_taskrun(namespace))
    cluster.faults.namespaces = frozenset({namespace})
    cluster.faults.drop_watches_every = 0.3
    try:
        thread = _later(
            lambda: _watches(cluster, namespace) >= 3,
            lambda: _set_status(api_client, namespace, "tr-1", {"phase": "Failed"}),
        )
        done = api.wait_for("tr-1", namespace, _phase_is("Failed"), known=created)
        thread.join()
        assert done["status"]["phase"] == "Failed"
        # Every re-open resumed from the last version seen: no reads.
        assert _gets(cluster, namespace) == 0
        assert _watches(cluster, namespace) >= 3

        # A resume the server cannot serve (410 Gone): one read, then a watch from it.
        cluster.faults.drop_watches_every = None
        cluster.faults.force_410_on_resume = True
        done = api.wait_for("tr-1", namespace, _phase_is("Failed"), known=created)
        assert done["status"]["phase"] == "Failed"
        assert _gets(cluster, namespace) == 1
    finally:
        cluster.faults.clear()


def test_wait_retries_a_watch_refused_with_504(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    # 504: the apiserver's watch cache has not caught up with the version yet (right after
    # a create): not an error, the watch is opened again a second later.
    api = TaskRunApi(api_client)
    created, _ = api.create_or_get(_taskrun(namespace))
    _set_status(api_client, namespace, "tr-1", {"phase": "Succeeded"})
    cluster.faults.reseed(3)
    watches = frozenset({"watch"})
    with faults_in(cluster, namespace, verbs=watches, error_codes=(504,), error_rate=0.5):
        done = api.wait_for("tr-1", namespace, _phase_is("Succeeded"), known=created)
    assert done["status"]["phase"] == "Succeeded"
    refused = cluster.requests.count(verb="watch", namespace=namespace, code=504)
    assert 1 <= refused <= 5
    assert _gets(cluster, namespace) == 0


def test_trigger_from_the_created_version_sees_an_earlier_finish(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    created, _ = api.create_or_get(_taskrun(namespace))
    # A result larger than aiohttp's 128 KiB line limit: the watch event still gets through
    # (the event then leaves the TaskRun out, and the task reads it on resume).
    result = json.dumps({"blob": "x" * 300_000})
    _set_status(api_client, namespace, "tr-1", {"phase": "Succeeded", "result": result})
    trigger = TaskRunTrigger(
        name="tr-1",
        namespace=namespace,
        config_dict=_kubeconfig(cluster),
        resource_version=created["metadata"]["resourceVersion"],
    )

    payload = first_event(trigger)
    assert (payload["status"], payload["phase"]) == ("done", "Succeeded"), payload
    assert "taskrun" not in payload
    assert _gets(cluster, namespace) == 0
    assert _watches(cluster, namespace) == 1


def test_trigger_rereads_only_on_410(
    api_client: ApiClient, namespace: str, cluster: DevCluster
) -> None:
    api = TaskRunApi(api_client)
    created, _ = api.create_or_get(_taskrun(namespace))
    _set_status(api_client, namespace, "tr-1", {"phase": "Skipped", "exitCode": 9})
    trigger = TaskRunTrigger(
        name="tr-1",
        namespace=namespace,
        config_dict=_kubeconfig(cluster),
        resource_version=created["metadata"]["resourceVersion"],
    )

    with faults_in(cluster, namespace, force_410_on_resume=True):
        payload = first_event(trigger)
    assert payload["phase"] == "Skipped"
    assert payload["taskrun"]["status"]["exitCode"] == 9
    assert _gets(cluster, namespace) == 1


def test_trigger_reports_a_missing_taskrun(namespace: str, cluster: DevCluster) -> None:
    trigger = TaskRunTrigger(name="absent", namespace=namespace, config_dict=_kubeconfig(cluster))

    payload = first_event(trigger)
    assert payload["status"] == "error"
    assert "404" in payload["message"]


def _kubeconfig(cluster: DevCluster) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(Path(str(cluster.kubeconfig_path)).read_text())


def _gets(cluster: DevCluster, namespace: str) -> int:
    return cluster.requests.count(verb="get", resource="taskruns", namespace=namespace)


def _watches(cluster: DevCluster, namespace: str) -> int:
    return cluster.requests.count(verb="watch", resource="taskruns", namespace=namespace)


def _phase_is(phase: str) -> Any:
    return lambda tr: (tr.get("status") or {}).get("phase") == phase


def _later(condition: Any, action: Any) -> threading.Thread:
    def run() -> None:
        _wait_until(condition)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _phase(api_client: ApiClient, namespace: str) -> str | None:
    return CoreV1Api(api_client).read_namespaced_pod("p", namespace).status.phase


def _wait_until(condition: Any, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.02)
