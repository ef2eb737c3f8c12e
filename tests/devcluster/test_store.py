import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.store import (
    CONFIGMAPS,
    CRDS,
    EVENTS,
    EVENTS_V1,
    NAMESPACES,
    PODS,
    ApiError,
    ResourceKey,
    Store,
)

WIDGETS = ResourceKey("example.dev", "v1", "widgets")
CRD = yaml.safe_load((Path(__file__).parent / "data" / "widgets-crd.yaml").read_text())


def pod(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, **meta},
        "spec": {"containers": [{"name": "base", "image": "busybox"}]},
    }


def cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **meta}, "data": {"k": "v"}}


@pytest.fixture
def store() -> Store:
    return Store()


async def with_crd(store: Store) -> Store:
    await store.create(CRDS, None, CRD)
    return store


async def next_event(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> tuple[str, dict]:
    return await asyncio.wait_for(events.__anext__(), 2)


async def test_create_sets_identity_fields(store: Store) -> None:
    obj = await store.create(CONFIGMAPS, "default", cm("a"))
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["namespace"] == "default"
    assert int(meta["resourceVersion"]) == int(store.resource_version())
    assert obj["apiVersion"] == "v1" and obj["kind"] == "ConfigMap"


async def test_resource_versions_are_one_global_counter(store: Store) -> None:
    a = await store.create(CONFIGMAPS, "default", cm("a"))
    b = await store.create(PODS, "default", pod("b"))
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1


async def test_create_twice_is_409_already_exists(store: Store) -> None:
    await store.create(CONFIGMAPS, "default", cm("a"))
    with pytest.raises(ApiError) as err:
        await store.create(CONFIGMAPS, "default", cm("a"))
    assert (err.value.code, err.value.reason) == (409, "AlreadyExists")


async def test_create_in_missing_namespace_is_404(store: Store) -> None:
    with pytest.raises(ApiError) as err:
        await store.create(CONFIGMAPS, "nope", cm("a"))
    assert err.value.code == 404
    assert 'namespaces "nope" not found' in err.value.message


async def test_generate_name(store: Store) -> None:
    a = await store.create(CONFIGMAPS, "default", {"metadata": {"generateName": "job-"}})
    b = await store.create(CONFIGMAPS, "default", {"metadata": {"generateName": "job-"}})
    assert a["metadata"]["name"].startswith("job-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_missing_name_is_422(store: Store) -> None:
    with pytest.raises(ApiError) as err:
        await store.create(CONFIGMAPS, "default", {"metadata": {}})
    assert err.value.code == 422
    assert err.value.details["causes"][0]["field"] == "metadata.name"


async def test_stale_resource_version_is_409_conflict(store: Store) -> None:
    obj = await store.create(CONFIGMAPS, "default", cm("a"))
    fresh = await store.replace(CONFIGMAPS, "default", "a", {**obj, "data": {"k": "2"}})
    assert fresh["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
    with pytest.raises(ApiError) as err:
        await store.replace(CONFIGMAPS, "default", "a", {**obj, "data": {"k": "3"}})
    assert (err.value.code, err.value.reason) == (409, "Conflict")
    assert "the object has been modified" in err.value.message


async def test_noop_update_keeps_resource_version(store: Store) -> None:
    obj = await store.create(CONFIGMAPS, "default", cm("a"))
    same = await store.patch(CONFIGMAPS, "default", "a", {"data": {"k": "v"}})
    assert same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


async def test_status_subresource_is_separate(store: Store) -> None:
    await with_crd(store)
    w = await store.create(
        WIDGETS,
        "default",
        {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"color": "red"},
            "status": {"phase": "ignored"},
        },
    )
    assert "status" not in w
    assert w["metadata"]["generation"] == 1
    w = await store.patch(WIDGETS, "default", "w", {"status": {"phase": "Running"}})
    assert "status" not in w, "the main resource ignores status"
    w = await store.patch(
        WIDGETS,
        "default",
        "w",
        {"status": {"phase": "Running"}, "spec": {"size": 7}},
        subresource="status",
    )
    assert w["status"] == {"phase": "Running"}
    assert w["spec"]["size"] == 1, "the status subresource ignores spec"
    assert w["metadata"]["generation"] == 1, "status writes do not bump generation"
    w = await store.patch(WIDGETS, "default", "w", {"spec": {"size": 2}})
    assert w["metadata"]["generation"] == 2
    assert w["status"] == {"phase": "Running"}
    w = await store.patch(WIDGETS, "default", "w", {"metadata": {"labels": {"a": "b"}}})
    assert w["metadata"]["generation"] == 2, "metadata changes do not bump generation"


async def test_cr_is_validated_against_the_schema_with_field_paths(store: Store) -> None:
    await with_crd(store)
    with pytest.raises(ApiError) as err:
        await store.create(
            WIDGETS,
            "default",
            {
                "apiVersion": "example.dev/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"color": "red", "size": -1},
            },
        )
    assert err.value.code == 422
    assert err.value.message == (
        'Widget.example.dev "w" is invalid: spec.size: Invalid value: -1: '
        "spec.size in body should be greater than or equal to 0"
    )
    assert err.value.details["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.size",
            "message": "Invalid value: -1: spec.size in body should be greater than or equal to 0",
        }
    ]


async def test_cel_transition_rule_on_update(store: Store) -> None:
    await with_crd(store)
    await store.create(
        WIDGETS,
        "default",
        {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"color": "red"},
        },
    )
    with pytest.raises(ApiError) as err:
        await store.patch(WIDGETS, "default", "w", {"spec": {"color": "blue"}})
    assert err.value.code == 422
    assert err.value.details["causes"][0]["field"] == "spec.color"
    assert "color is immutable" in err.value.message


async def test_strict_field_validation_refuses_unknown_fields(store: Store) -> None:
    await with_crd(store)
    body = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"color": "red", "colour": "red"},
    }
    with pytest.raises(ApiError) as err:
        await store.create(WIDGETS, "default", body, field_validation="Strict")
    assert err.value.code == 400
    assert 'unknown field "spec.colour"' in err.value.message
    warnings: list[str] = []
    w = await store.create(WIDGETS, "default", body, warnings=warnings)
    assert "colour" not in w["spec"]
    assert warnings == ['unknown field "spec.colour"']


async def test_finalizers_keep_the_object_until_removed(store: Store) -> None:
    await store.create(CONFIGMAPS, "default", cm("a", finalizers=["example.dev/hold"]))
    kept = await store.delete(CONFIGMAPS, "default", "a")
    assert kept is not None and kept["metadata"]["deletionTimestamp"]
    assert (await store.get(CONFIGMAPS, "default", "a"))["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as err:
        await store.patch(CONFIGMAPS, "default", "a", {"metadata": {"finalizers": ["x", "y"]}})
    assert err.value.code == 422, "no new finalizers on an object being deleted"
    await store.patch(CONFIGMAPS, "default", "a", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as err:
        await store.get(CONFIGMAPS, "default", "a")
    assert err.value.code == 404


async def test_json_patch_test_failure_is_422(store: Store) -> None:
    obj = await store.create(CONFIGMAPS, "default", cm("a"))
    rv = obj["metadata"]["resourceVersion"]
    patch = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.dev/f"]},
    ]
    updated = await store.patch(CONFIGMAPS, "default", "a", patch, "json")
    assert updated["metadata"]["finalizers"] == ["example.dev/f"]
    with pytest.raises(ApiError) as err:
        await store.patch(CONFIGMAPS, "default", "a", patch, "json")
    assert err.value.code == 422


async def test_unbound_pod_is_deleted_at_once(store: Store) -> None:
    await store.create(PODS, "default", pod("p"))
    await store.delete(PODS, "default", "p")
    with pytest.raises(ApiError):
        await store.get(PODS, "default", "p")


async def test_bound_running_pod_is_deleted_gracefully(store: Store) -> None:
    await store.create(PODS, "default", pod("p"))
    bound = await store.bind("default", "p", "node-1")
    assert bound["spec"]["nodeName"] == "node-1"
    assert bound["status"]["conditions"][0]["type"] == "PodScheduled"
    kept = await store.delete(PODS, "default", "p", grace_period_seconds=10)
    assert kept is not None
    assert kept["metadata"]["deletionGracePeriodSeconds"] == 10
    assert (await store.get(PODS, "default", "p"))["metadata"]["deletionTimestamp"]
    await store.delete(PODS, "default", "p", grace_period_seconds=0)
    with pytest.raises(ApiError):
        await store.get(PODS, "default", "p")


async def test_terminal_pod_is_deleted_at_once(store: Store) -> None:
    await store.create(PODS, "default", pod("p"))
    await store.bind("default", "p", "node-1")
    await store.patch(
        PODS, "default", "p", {"status": {"phase": "Succeeded"}}, subresource="status"
    )
    await store.delete(PODS, "default", "p")
    with pytest.raises(ApiError):
        await store.get(PODS, "default", "p")


async def test_pod_node_name_only_via_binding(store: Store) -> None:
    await store.create(PODS, "default", pod("p"))
    with pytest.raises(ApiError) as err:
        await store.patch(PODS, "default", "p", {"spec": {"nodeName": "n"}})
    assert err.value.code == 422
    await store.bind("default", "p", "n")
    with pytest.raises(ApiError) as err:
        await store.bind("default", "p", "m")
    assert err.value.code == 409


async def test_pod_validation_names_the_field(store: Store) -> None:
    bad = pod("p")
    bad["spec"]["containers"][0]["name"] = "Base_1"
    with pytest.raises(ApiError) as err:
        await store.create(PODS, "default", bad)
    assert err.value.code == 422
    assert err.value.details["causes"][0]["field"] == "spec.containers[0].name"


async def owned(store: Store, owner: dict[str, Any], dependent: str, **ref: Any) -> dict[str, Any]:
    return await store.create(
        CONFIGMAPS,
        "default",
        cm(
            dependent,
            ownerReferences=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    **ref,
                }
            ],
        ),
    )


async def wait_gone(store: Store, key: ResourceKey, ns: str, name: str) -> None:
    for _ in range(200):
        try:
            await store.get(key, ns, name)
        except ApiError:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{name} still exists")


async def test_owner_reference_garbage_collection(store: Store) -> None:
    owner = await store.create(CONFIGMAPS, "default", cm("owner"))
    child = await owned(store, owner, "child")
    await owned(store, child, "grandchild")
    other = await store.create(CONFIGMAPS, "default", cm("other"))
    await store.create(
        CONFIGMAPS,
        "default",
        cm(
            "shared",
            ownerReferences=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                },
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "other",
                    "uid": other["metadata"]["uid"],
                },
            ],
        ),
    )
    await store.delete(CONFIGMAPS, "default", "owner")
    await wait_gone(store, CONFIGMAPS, "default", "child")
    await wait_gone(store, CONFIGMAPS, "default", "grandchild")
    shared = await store.get(CONFIGMAPS, "default", "shared")
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["other"]


@pytest.mark.parametrize(
    ("ref", "kept"),
    [
        ({}, True),
        ({"name": "someone-else"}, False),
        ({"uid": "no-such-uid"}, False),
    ],
    ids=["right-name-and-uid", "wrong-name", "wrong-uid"],
)
async def test_a_dependent_naming_an_absent_owner_is_collected(
    store: Store, ref: dict[str, str], kept: bool
) -> None:
    """As Kubernetes' garbage collector: the owner is looked up by name, then its uid compared."""
    owner = await store.create(CONFIGMAPS, "default", cm("owner"))
    await owned(store, owner, "child", **ref)
    # A barrier: a dependent of no owner at all goes in the same collection as the child.
    await owned(store, owner, "probe", uid="absent")
    await wait_gone(store, CONFIGMAPS, "default", "probe")
    names = {c["metadata"]["name"] for c in await store.list(CONFIGMAPS, "default")}
    assert ("child" in names) is kept


async def test_a_dangling_reference_is_dropped_when_another_owner_is_present(store: Store) -> None:
    owner = await store.create(CONFIGMAPS, "default", cm("owner"))
    refs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": owner["metadata"]["uid"]},
    ]
    await store.create(CONFIGMAPS, "default", cm("shared", ownerReferences=refs))
    for _ in range(200):
        shared = await store.get(CONFIGMAPS, "default", "shared")
        if len(shared["metadata"]["ownerReferences"]) == 1:
            break
        await asyncio.sleep(0.005)
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["owner"]


async def test_orphan_propagation_keeps_dependents(store: Store) -> None:
    owner = await store.create(CONFIGMAPS, "default", cm("owner"))
    await owned(store, owner, "child")
    await store.delete(CONFIGMAPS, "default", "owner", propagation_policy="Orphan")
    await asyncio.sleep(0.01)
    child = await store.get(CONFIGMAPS, "default", "child")
    assert "ownerReferences" not in child["metadata"]


async def test_foreground_deletion_waits_for_blocking_dependents(store: Store) -> None:
    owner = await store.create(CONFIGMAPS, "default", cm("owner"))
    await owned(store, owner, "child", blockOwnerDeletion=True)
    await store.patch(
        CONFIGMAPS, "default", "child", {"metadata": {"finalizers": ["example.dev/hold"]}}
    )
    kept = await store.delete(CONFIGMAPS, "default", "owner", propagation_policy="Foreground")
    assert kept is not None and "foregroundDeletion" in kept["metadata"]["finalizers"]
    assert (await store.get(CONFIGMAPS, "default", "child"))["metadata"]["deletionTimestamp"]
    await store.patch(CONFIGMAPS, "default", "child", {"metadata": {"finalizers": None}})
    await wait_gone(store, CONFIGMAPS, "default", "owner")


async def test_namespace_deletion_removes_its_content(store: Store) -> None:
    await store.create(NAMESPACES, None, {"metadata": {"name": "doomed"}})
    await store.create(CONFIGMAPS, "doomed", cm("a"))
    await store.delete(NAMESPACES, None, "doomed")
    assert await store.list(CONFIGMAPS, "doomed") == []
    await wait_gone(store, NAMESPACES, None, "doomed")


async def test_terminating_namespace_refuses_new_content(store: Store) -> None:
    await store.create(NAMESPACES, None, {"metadata": {"name": "doomed"}})
    await store.create(CONFIGMAPS, "doomed", cm("a", finalizers=["example.dev/hold"]))
    await store.delete(NAMESPACES, None, "doomed")
    ns = await store.get(NAMESPACES, None, "doomed")
    assert ns["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as err:
        await store.create(CONFIGMAPS, "doomed", cm("b"))
    assert err.value.code == 403
    await store.patch(CONFIGMAPS, "doomed", "a", {"metadata": {"finalizers": None}})
    await wait_gone(store, NAMESPACES, None, "doomed")


async def test_list_with_selectors(store: Store) -> None:
    await store.create(CONFIGMAPS, "default", cm("a", labels={"app": "x", "tier": "1"}))
    await store.create(CONFIGMAPS, "default", cm("b", labels={"app": "y"}))
    await store.create(CONFIGMAPS, "kube-system", cm("c", labels={"app": "x"}))
    names = lambda items: [i["metadata"]["name"] for i in items]  # noqa: E731
    assert names(await store.list(CONFIGMAPS, label_selector="app=x")) == ["a", "c"]
    assert names(await store.list(CONFIGMAPS, "default", label_selector="app in (x,y)")) == [
        "a",
        "b",
    ]
    assert names(await store.list(CONFIGMAPS, label_selector="!tier")) == ["b", "c"]
    assert names(await store.list(CONFIGMAPS, field_selector="metadata.name!=a")) == ["b", "c"]
    assert names(
        await store.list(CONFIGMAPS, field_selector="metadata.namespace=default,metadata.name=b")
    ) == ["b"]


async def test_pod_field_selectors(store: Store) -> None:
    await store.create(PODS, "default", pod("a"))
    await store.create(PODS, "default", pod("b"))
    await store.bind("default", "b", "node-1")
    names = [
        p["metadata"]["name"] for p in await store.list(PODS, field_selector="spec.nodeName=node-1")
    ]
    assert names == ["b"]
    pending = await store.list(PODS, field_selector="status.phase=Pending,spec.nodeName=")
    assert [p["metadata"]["name"] for p in pending] == ["a"]
    with pytest.raises(ApiError) as err:
        await store.list(PODS, field_selector="spec.image=x")
    assert err.value.code == 400


async def test_events_served_in_both_versions(store: Store) -> None:
    await store.create(
        EVENTS,
        "default",
        {
            "metadata": {"name": "e"},
            "reason": "Started",
            "message": "hi",
            "involvedObject": {"kind": "Pod", "name": "p"},
        },
    )
    new = await store.get(EVENTS_V1, "default", "e")
    assert new["apiVersion"] == "events.k8s.io/v1"
    assert new["note"] == "hi" and new["regarding"]["name"] == "p"
    found = await store.list(EVENTS_V1, field_selector="regarding.name=p")
    assert [e["metadata"]["name"] for e in found] == ["e"]
    assert (await store.list(EVENTS, field_selector="involvedObject.name=p"))[0]["message"] == "hi"


async def test_watch_from_now_sees_changes(store: Store) -> None:
    events = store.watch(CONFIGMAPS, "default")
    first = asyncio.ensure_future(next_event(events))
    await asyncio.sleep(0)
    await store.create(CONFIGMAPS, "kube-system", cm("elsewhere"))
    await store.create(CONFIGMAPS, "default", cm("a"))
    kind, obj = await first
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "a")
    await store.patch(CONFIGMAPS, "default", "a", {"data": {"k": "2"}})
    await store.delete(CONFIGMAPS, "default", "a")
    assert (await next_event(events))[0] == "MODIFIED"
    assert (await next_event(events))[0] == "DELETED"
    await events.aclose()


async def test_watch_resume_replays_history(store: Store) -> None:
    a = await store.create(CONFIGMAPS, "default", cm("a"))
    await store.create(CONFIGMAPS, "default", cm("b"))
    await store.delete(CONFIGMAPS, "default", "a")
    events = store.watch_events(CONFIGMAPS, resource_version=a["metadata"]["resourceVersion"])
    replay = [await next_event(events), await next_event(events)]
    assert [(k, o["metadata"]["name"]) for k, o in replay] == [("ADDED", "b"), ("DELETED", "a")]
    await events.aclose()


async def test_watch_from_zero_sends_current_state(store: Store) -> None:
    await store.create(CONFIGMAPS, "default", cm("a"))
    events = store.watch_events(CONFIGMAPS, "default", resource_version="0")
    kind, obj = await next_event(events)
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "a")
    await events.aclose()


async def test_watch_list_ends_initial_events_with_a_bookmark(store: Store) -> None:
    await store.create(CONFIGMAPS, "default", cm("a"))
    events = store.watch_events(CONFIGMAPS, "default", send_initial_events=True)
    assert (await next_event(events))[0] == "ADDED"
    kind, mark = await next_event(events)
    assert kind == "BOOKMARK"
    assert mark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    await events.aclose()


async def test_too_old_resource_version_is_410_gone() -> None:
    store = Store(history_size=3)
    first = await store.create(CONFIGMAPS, "default", cm("a"))
    for i in range(5):
        await store.patch(CONFIGMAPS, "default", "a", {"data": {"k": str(i)}})
    events = store.watch_events(CONFIGMAPS, resource_version=first["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as err:
        await next_event(events)
    assert (err.value.code, err.value.reason) == (410, "Expired")


async def test_watch_selector_transitions() -> None:
    store = Store()
    await store.create(CONFIGMAPS, "default", cm("a"))
    events = store.watch_events(
        CONFIGMAPS, resource_version=store.resource_version(), label_selector="app=x"
    )
    pending = asyncio.ensure_future(next_event(events))
    await asyncio.sleep(0)
    await store.patch(CONFIGMAPS, "default", "a", {"metadata": {"labels": {"app": "x"}}})
    assert (await pending)[0] == "ADDED", "starting to match looks like an addition"
    await store.patch(CONFIGMAPS, "default", "a", {"metadata": {"labels": {"app": "y"}}})
    assert (await next_event(events))[0] == "DELETED", "ceasing to match looks like a deletion"
    await events.aclose()


async def test_watch_bookmarks_and_timeout(store: Store) -> None:
    events = store.watch_events(
        CONFIGMAPS, resource_version=store.resource_version(), bookmark_interval=0.05, timeout=0.3
    )
    kind, mark = await next_event(events)
    assert kind == "BOOKMARK"
    assert mark["metadata"]["resourceVersion"] == store.resource_version()
    rest = [k async for k, _ in events]
    assert set(rest) <= {"BOOKMARK"}, "the stream ends by itself at the timeout"


async def test_crd_deletion_removes_its_objects(store: Store) -> None:
    await with_crd(store)
    await store.create(
        WIDGETS,
        "default",
        {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"color": "red"},
        },
    )
    await store.delete(CRDS, None, CRD["metadata"]["name"])
    with pytest.raises(ApiError) as err:
        await store.list(WIDGETS)
    assert err.value.code == 404
    await with_crd(store)
    assert await store.list(WIDGETS) == []


async def test_crd_status_established(store: Store) -> None:
    crd = await store.create(CRDS, None, CRD)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"


async def test_invalid_crd_is_refused(store: Store) -> None:
    bad = yaml.safe_load(yaml.safe_dump(CRD))
    bad["metadata"]["name"] = "wrong.example.dev"
    with pytest.raises(ApiError) as err:
        await store.create(CRDS, None, bad)
    assert err.value.code == 422
    assert err.value.details["causes"][0]["field"] == "metadata.name"


async def test_injected_clock(store: Store) -> None:
    fixed = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    store.clock = lambda: fixed
    obj = await store.create(CONFIGMAPS, "default", cm("a"))
    assert obj["metadata"]["creationTimestamp"] == "2030-01-02T03:04:05Z"


async def test_crd_versions_share_storage(store: Store) -> None:
    crd = yaml.safe_load(yaml.safe_dump(CRD))
    v2 = yaml.safe_load(yaml.safe_dump(crd["spec"]["versions"][0]))
    v2["name"], v2["storage"] = "v2", False
    crd["spec"]["versions"].append(v2)
    await store.create(CRDS, None, crd)
    await store.create(
        WIDGETS,
        "default",
        {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"color": "red"},
        },
    )
    as_v2 = await store.get(ResourceKey("example.dev", "v2", "widgets"), "default", "w")
    assert as_v2["apiVersion"] == "example.dev/v2"
    assert as_v2["metadata"]["uid"] == (await store.get(WIDGETS, "default", "w"))["metadata"]["uid"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"metadata": {"name": "a", "labels": {"x": 1}}},
            "cannot unmarshal object into Go struct field ConfigMap.metadata.labels",
        ),
        ({"metadata": "a"}, "cannot unmarshal string into Go struct field ConfigMap.metadata"),
        (
            {"metadata": {"name": "a"}, "data": ["x"]},
            "cannot unmarshal list into Go struct field ConfigMap.data",
        ),
    ],
)
async def test_wrong_json_types_are_400(store: Store, body: dict, message: str) -> None:
    with pytest.raises(ApiError) as err:
        await store.create(CONFIGMAPS, "default", body)
    assert err.value.code == 400
    assert message in err.value.message


async def test_owner_reference_needs_its_identity(store: Store) -> None:
    with pytest.raises(ApiError) as err:
        await store.create(CONFIGMAPS, "default", cm("a", ownerReferences=[{"kind": "X"}]))
    assert err.value.code == 422
    assert err.value.details["causes"][0]["field"] == "metadata.ownerReferences[0].apiVersion"


async def test_generation_only_on_kinds_with_desired_state(store: Store) -> None:
    data = await store.create(CONFIGMAPS, "default", cm("a"))
    assert "generation" not in data["metadata"]
    data = await store.patch(CONFIGMAPS, "default", "a", {"data": {"k": "2"}})
    assert "generation" not in data["metadata"]
    p = await store.create(PODS, "default", pod("p"))
    assert p["metadata"]["generation"] == 1
    p = await store.patch(PODS, "default", "p", {"spec": {"activeDeadlineSeconds": 5}})
    assert p["metadata"]["generation"] == 2
