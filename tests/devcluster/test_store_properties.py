"""Properties of the store over random operation sequences."""

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devcluster.store import CONFIGMAPS, ApiError, Store

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
