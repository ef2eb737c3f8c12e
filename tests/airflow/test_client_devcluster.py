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

from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.config import load_kube_config

from devcluster import DevCluster
from taskrun.airflow import mapping
from taskrun.airflow.client import TaskRunApi
from taskrun.airflow.trigger import TaskRunTrigger

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(60)]

_ns_counter = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    dc = DevCluster(bookmark_interval=1.0).start()
    dc.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        dc.apply_file(crd)
    try:
        yield dc
    finally:
        dc.stop()


@pytest.fixture
def api_client(cluster: DevCluster) -> Iterator[ApiClient]:
    config = Configuration()
    load_kube_config(config_file=str(cluster.kubeconfig_path), client_configuration=config)
    client = ApiClient(config)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(cluster: DevCluster) -> str:
    name = f"client-{next(_ns_counter)}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def _taskrun(namespace: str, name: str = "tr-1", **spec: Any) -> dict[str, Any]:
    return mapping.build_taskrun(
        {"image": "busybox", **spec},
        name=name,
        namespace=namespace,
        annotations={mapping.HOLD_POD_ANNOTATION: "true"},
    )


def _set_status(api_client: ApiClient, namespace: str, name: str, status: dict) -> None:
    from kubernetes.client import CustomObjectsApi

    CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        "taskrun.dev",
        "v1alpha1",
        namespace,
        "taskruns",
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )


def test_create_then_reattach(api_client: ApiClient, namespace: str, cluster: DevCluster) -> None:
    api = TaskRunApi(api_client)
    first, created = api.create_or_get(_taskrun(namespace))
    second, created_again = api.create_or_get(_taskrun(namespace))
    assert (created, created_again) == (True, False)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert cluster.requests.count(verb="create", resource="taskruns", namespace=namespace) == 2


def test_merge_patch_keeps_other_annotations(api_client: ApiClient, namespace: str) -> None:
    api = TaskRunApi(api_client)
    api.create_or_get(_taskrun(namespace))
    patched = api.patch("tr-1", namespace, mapping.CANCEL_PATCH)
    assert patched["spec"]["cancel"] is True
    assert patched["spec"]["image"] == "busybox"
    assert patched["metadata"]["annotations"] == {
        mapping.HOLD_POD_ANNOTATION: "true",
        mapping.LOGS_ACKED_ANNOTATION: "true",
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
    assert api.read_log("nope", namespace, "base") == b""


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

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    thread = threading.Thread(target=controller)
    thread.start()
    payload = asyncio.run(asyncio.wait_for(first_event(), 30))
    thread.join()
    assert payload == {
        "status": "done",
        "name": "tr-1",
        "namespace": namespace,
        "phase": "Succeeded",
        "message": "",
    }

    asyncio.run(trigger.on_kill())
    assert api.get("tr-1", namespace)["spec"]["cancel"] is True


def test_trigger_reports_a_missing_taskrun(namespace: str, cluster: DevCluster) -> None:
    trigger = TaskRunTrigger(name="absent", namespace=namespace, config_dict=_kubeconfig(cluster))

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    payload = asyncio.run(asyncio.wait_for(first_event(), 30))
    assert payload["status"] == "error"
    assert "404" in payload["message"]


def _kubeconfig(cluster: DevCluster) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(Path(str(cluster.kubeconfig_path)).read_text())


def _gets(cluster: DevCluster, namespace: str) -> int:
    return cluster.requests.count(verb="get", resource="taskruns", namespace=namespace)


def _phase(api_client: ApiClient, namespace: str) -> str | None:
    return CoreV1Api(api_client).read_namespaced_pod("p", namespace).status.phase


def _wait_until(condition: Any, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.02)
