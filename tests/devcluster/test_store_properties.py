"""Properties of the store over random operation sequences."""

import asyncio
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from devcluster.schema import compile_rules
from devcluster.store import CONFIGMAPS, CRDS, PODS, ApiError, ResourceKey, Store

WIDGETS = ResourceKey("example.dev", "v1", "widgets")
WIDGET_CRD = yaml.safe_load((Path(__file__).parent / "data" / "widgets-crd.yaml").read_text())
# cel-python raises the recursion limit when it first builds its parser: do that outside
# hypothesis, which warns about limits changed under it.
compile_rules(WIDGET_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"])

NAMES = st.sampled_from(["a", "b", "c"])
OPS = st.lists(
    st.tuples(st.sampled_from(["create", "patch", "delete", "label"]), NAMES, st.integers(0, 3)),
    max_size=25,
)
SELECTORS = st.sampled_from([None, "sel=1", "sel!=1", "!sel"])


async def apply(store: Store, op: str, name: str, value: int) -> None:
    try:
        if op == "create":
            await store.create(CONFIGMAPS, "default", {"metadata": {"name": name}})
        elif op == "patch":
            await store.patch(CONFIGMAPS, "default", name, {"data": {"v": str(value)}})
        elif op == "label":
            labels = {"metadata": {"labels": {"sel": str(value % 2)}}}
            await store.patch(CONFIGMAPS, "default", name, labels)
        else:
            await store.delete(CONFIGMAPS, "default", name)
    except ApiError as exc:
        assert exc.code in (404, 409)


def by_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs}


@settings(max_examples=60, deadline=None)
@given(OPS, OPS, SELECTORS)
def test_list_then_watch_rebuilds_the_current_state(
    before: list[Any], after: list[Any], selector: str | None
) -> None:
    """What a reflector does: list, then apply the watch events from the list's version."""

    async def scenario() -> None:
        store = Store()
        for op in before:
            await apply(store, *op)
        listed, rv = store.list_now(CONFIGMAPS, "default", selector)
        for op in after:
            await apply(store, *op)
        state = by_name(listed)
        events = store.watch_events(
            CONFIGMAPS, "default", resource_version=rv, label_selector=selector, timeout=0.01
        )
        async for kind, obj in events:
            if kind == "DELETED":
                del state[obj["metadata"]["name"]]
            else:
                assert (kind == "ADDED") == (obj["metadata"]["name"] not in state)
                state[obj["metadata"]["name"]] = obj
        assert state == by_name(await store.list(CONFIGMAPS, "default", selector))

    asyncio.run(scenario())


@settings(max_examples=40, deadline=None)
@given(OPS)
def test_resource_versions_only_grow(ops: list[Any]) -> None:
    async def scenario() -> None:
        store = Store()
        seen = int(store.resource_version())
        for op in ops:
            await apply(store, *op)
            for obj in await store.list(CONFIGMAPS, "default"):
                assert int(obj["metadata"]["resourceVersion"]) <= int(store.resource_version())
            assert int(store.resource_version()) >= seen
            seen = int(store.resource_version())

    asyncio.run(scenario())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {"name": st.sampled_from(["ok", "Bad", ""])},
                optional={"labels": JSON, "finalizers": JSON, "ownerReferences": JSON},
            ),
        ),
        "spec": JSON,
        "status": JSON,
        "data": JSON,
    },
)


@settings(max_examples=150, deadline=None)
@given(BODIES, BODIES)
def test_bad_bodies_are_client_errors_never_500(first: dict[str, Any], second: Any) -> None:
    """Whatever a client sends, the store answers with an object or a 4xx Status."""

    async def scenario() -> None:
        store = Store()
        await store.create(CRDS, None, WIDGET_CRD)
        for key in (CONFIGMAPS, PODS, WIDGETS):
            try:
                await store.create(key, "default", first)
            except ApiError as exc:
                assert 400 <= exc.code < 500, exc.message
            for patch_type in ("merge", "strategic"):
                try:
                    await store.patch(key, "default", "ok", second, patch_type)
                except ApiError as exc:
                    assert 400 <= exc.code < 500, exc.message

    asyncio.run(scenario())


CRD_PATHS = st.sampled_from(
    [
        ("spec",),
        ("spec", "group"),
        ("spec", "names"),
        ("spec", "names", "plural"),
        ("spec", "versions"),
        ("spec", "scope"),
        ("metadata", "name"),
    ]
)


@settings(max_examples=100, deadline=None)
@given(CRD_PATHS, JSON)
def test_broken_crds_are_refused_never_500(path: tuple[str, ...], value: Any) -> None:
    crd = yaml.safe_load(yaml.safe_dump(WIDGET_CRD))
    target = crd
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value

    async def scenario() -> None:
        store = Store()
        try:
            await store.create(CRDS, None, crd)
        except ApiError as exc:
            assert 400 <= exc.code < 500, exc.message

    asyncio.run(scenario())
