"""The official Python client (what the Airflow side uses) against devcluster."""

from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from devcluster import DevCluster


@pytest.fixture
def api(devcluster: DevCluster) -> Iterator[client.ApiClient]:
    with client.ApiClient(
        config.new_client_from_config(str(devcluster.kubeconfig_path)).configuration
    ) as api_client:
        yield api_client


def test_core_objects(api: client.ApiClient, devcluster_ns: str) -> None:
    core = client.CoreV1Api(api)
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="c", labels={"a": "b"}), data={"k": "v"}
    )
    created = core.create_namespaced_config_map(devcluster_ns, body)
    assert created.metadata.uid and created.data == {"k": "v"}
    listed = core.list_namespaced_config_map(devcluster_ns, label_selector="a=b")
    assert [c.metadata.name for c in listed.items] == ["c"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(devcluster_ns, body)
    assert err.value.status == 409
    core.delete_namespaced_config_map("c", devcluster_ns)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("c", devcluster_ns)
    assert err.value.status == 404


def test_watch_stream(api: client.ApiClient, devcluster_ns: str) -> None:
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_config_map(devcluster_ns)
    core.create_namespaced_config_map(devcluster_ns, {"metadata": {"name": "w"}})
    core.patch_namespaced_config_map("w", devcluster_ns, {"data": {"x": "1"}})
    seen = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map,
        devcluster_ns,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=1,
    ):
        seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", "w"), ("MODIFIED", "w")]


def test_custom_objects(api: client.ApiClient, devcluster: DevCluster, devcluster_ns: str) -> None:
    from pathlib import Path

    devcluster.apply_file(Path(__file__).parent / "data" / "widgets-crd.yaml")
    custom = client.CustomObjectsApi(api)
    body = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"color": "green"},
    }
    created = custom.create_namespaced_custom_object(
        "example.dev", "v1", devcluster_ns, "widgets", body
    )
    assert created["spec"] == {"color": "green", "size": 1}, "defaults applied"
    patched = custom.patch_namespaced_custom_object_status(
        "example.dev", "v1", devcluster_ns, "widgets", "w", {"status": {"phase": "Ok"}}
    )
    assert patched["status"] == {"phase": "Ok"}
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            "example.dev", "v1", devcluster_ns, "widgets", "w", {"spec": {"size": -3}}
        )
    assert err.value.status == 422
    assert "spec.size" in err.value.body
