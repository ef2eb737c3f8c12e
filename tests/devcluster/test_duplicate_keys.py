"""devcluster.fastjson.duplicate_keys: the repeated keys of a JSON body, as kube-apiserver's
strict decoder names them, and never a false alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devcluster.fastjson import duplicate_keys

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)


@given(_json, st.sampled_from([None, 1, 2]), st.booleans())
def test_a_document_without_repeats_has_none(value: Any, indent: int | None, spaced: bool) -> None:
    """Whatever the strings hold (quotes, colons, escapes) and however it is laid out."""
    separators = (", ", " : ") if spaced else (",", ":")
    raw = json.dumps(value, indent=indent, separators=separators).encode()
    assert duplicate_keys(raw, json.loads(raw)) == []


@pytest.mark.parametrize(
    ("raw", "paths"),
    [
        (b'{"a": 1, "a": 2}', ["a"]),
        (b'{"a" : 1,"a":2, "a": 3}', ["a"]),
        (b'{"data": {"k": "1", "k": "2"}}', ["data.k"]),
        (
            b'{"spec": {"containers": [{"name": "a"}, {"name": "b", "name": "c"}]}}',
            ["spec.containers[1].name"],
        ),
        (b'{"s": "x\\": y", "t": {"u": 1, "u": 1}}', ["t.u"]),
        (b'[{"a": 1}, {"b": 1, "b": 2}]', ["[1].b"]),
    ],
)  # fmt: skip
def test_repeated_keys_are_named_by_path(raw: bytes, paths: list[str]) -> None:
    assert duplicate_keys(raw, json.loads(raw)) == paths
