import pytest
from hypothesis import given
from hypothesis import strategies as st

from devcluster.errors import ApiError
from devcluster.patch import json_patch, merge_patch, strategic_merge_patch

DOC = {"metadata": {"name": "a", "labels": {"x": "1"}, "resourceVersion": "7"}, "spec": {"n": 1}}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"spec": {"n": 2}}, {**DOC, "spec": {"n": 2}}),
        ({"spec": {"m": 3}}, {**DOC, "spec": {"n": 1, "m": 3}}),
        ({"spec": None}, {"metadata": DOC["metadata"]}),
        ({"spec": [1, 2]}, {**DOC, "spec": [1, 2]}),
        (
            {"metadata": {"labels": {"x": None, "y": "2"}}},
            {**DOC, "metadata": {**DOC["metadata"], "labels": {"y": "2"}}},
        ),
    ],
)
def test_merge_patch(patch: dict, expected: dict) -> None:
    assert merge_patch(DOC, patch) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=3), json_values, max_size=4))
def test_merge_patch_with_itself_drops_only_nulls(doc: dict) -> None:
    patched = merge_patch({}, doc)
    assert None not in patched.values()
    assert merge_patch(patched, patched) == patched


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "add", "path": "/spec/m", "value": 2}], {"n": 1, "m": 2}),
        ([{"op": "replace", "path": "/spec/n", "value": 5}], {"n": 5}),
        ([{"op": "remove", "path": "/spec/n"}], {}),
        ([{"op": "copy", "from": "/spec/n", "path": "/spec/k"}], {"n": 1, "k": 1}),
        ([{"op": "move", "from": "/spec/n", "path": "/spec/k"}], {"k": 1}),
        (
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                {"op": "add", "path": "/spec/l", "value": []},
                {"op": "add", "path": "/spec/l/-", "value": "a"},
                {"op": "add", "path": "/spec/l/0", "value": "b"},
            ],
            {"n": 1, "l": ["b", "a"]},
        ),
    ],
)
def test_json_patch(ops: list, expected: dict) -> None:
    assert json_patch(DOC, ops)["spec"] == expected


def test_json_patch_escapes_pointer_tokens() -> None:
    doc = {"metadata": {"annotations": {}}}
    out = json_patch(
        doc, [{"op": "add", "path": "/metadata/annotations/kopf.zalando.org~1x~0y", "value": "v"}]
    )
    assert out["metadata"]["annotations"] == {"kopf.zalando.org/x~y": "v"}


def test_failed_test_op_is_422_as_kopf_expects() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(DOC, [{"op": "test", "path": "/metadata/resourceVersion", "value": "6"}])
    assert err.value.code == 422
    assert err.value.reason == "Invalid"


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/spec/zz/x", "value": 1}],  # a replace of an absent key sets it
        [{"op": "remove", "path": "/nope"}],
        [{"op": "add", "path": "/a/b/c", "value": 1}],
    ],
)
def test_json_patch_on_missing_paths_is_422(ops: list) -> None:
    with pytest.raises(ApiError) as err:
        json_patch(DOC, ops)
    assert err.value.code == 422


def test_json_patch_leaves_input_untouched() -> None:
    doc = {"spec": {"n": 1}}
    json_patch(doc, [{"op": "replace", "path": "/spec/n", "value": 2}])
    assert doc == {"spec": {"n": 1}}


POD = {
    "metadata": {"finalizers": ["a"]},
    "spec": {
        "containers": [
            {"name": "base", "image": "x:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "y:1"},
        ],
        "tolerations": [{"key": "k"}],
    },
}


def test_strategic_merge_merges_containers_by_name() -> None:
    out = strategic_merge_patch(
        POD,
        {
            "spec": {
                "containers": [
                    {"name": "base", "image": "x:2", "env": [{"name": "B", "value": "2"}]}
                ]
            }
        },
    )
    base, side = out["spec"]["containers"]
    assert base["image"] == "x:2"
    assert base["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert side == {"name": "side", "image": "y:1"}


def test_strategic_merge_directives() -> None:
    out = strategic_merge_patch(
        POD,
        {
            "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {
                "containers": [{"name": "side", "$patch": "delete"}],
                "$setElementOrder/containers": [{"name": "base"}],
                "tolerations": [{"key": "z"}],
            },
        },
    )
    assert out["metadata"]["finalizers"] == ["b"]
    assert [c["name"] for c in out["spec"]["containers"]] == ["base"]
    # Lists without a merge key are replaced, as in Kubernetes.
    assert out["spec"]["tolerations"] == [{"key": "z"}]


def test_strategic_merge_replace_directive() -> None:
    out = strategic_merge_patch(POD, {"spec": {"$patch": "replace", "containers": []}})
    assert out["spec"] == {"containers": []}
