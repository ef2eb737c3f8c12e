import pytest
from hypothesis import given
from hypothesis import strategies as st

from devcluster.errors import ApiError
from devcluster.selectors import field_value, parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "env": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db,cache)", True),
        ("app notin (web)", False),
        ("missing notin (web)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("env=", True),
        ("app.kubernetes.io/name", False),
        (" app = web , !missing ", True),
    ],
)
def test_label_selector(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize("selector", ["app in web", "=web", "app in (web", "app web", "!"])
def test_label_selector_syntax_errors_are_400(selector: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(selector)
    assert err.value.code == 400


def test_prefixed_label_keys() -> None:
    sel = parse_label_selector("app.kubernetes.io/managed-by=taskrun-controller")
    assert sel.matches({"app.kubernetes.io/managed-by": "taskrun-controller"})
    assert not sel.matches({"app.kubernetes.io/managed-by": "other"})


label_key = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
label_value = st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True)


@given(st.dictionaries(label_key, label_value, max_size=5), label_key, label_value)
def test_equality_and_inequality_are_complements(
    labels: dict[str, str], key: str, value: str
) -> None:
    eq = parse_label_selector(f"{key}={value}").matches(labels)
    ne = parse_label_selector(f"{key}!={value}").matches(labels)
    assert eq != ne
    assert eq == (labels.get(key) == value)


EVENT = {
    "metadata": {"name": "e1", "namespace": "ns"},
    "involvedObject": {"kind": "Pod", "name": "p1", "uid": "u1"},
    "reason": "Started",
    "source": {"component": "kubelet"},
    "spec": {"unschedulable": True},
}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=e1", True),
        ("metadata.name!=e1", False),
        ("involvedObject.name=p1,involvedObject.kind=Pod", True),
        ("involvedObject.uid==u2", False),
        ("reason=Started", True),
        ("source=kubelet", True),
        ("spec.unschedulable=true", True),
        ("status.phase=", True),
    ],
)
def test_field_selector(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector).matches(EVENT) is matches


def test_unsupported_field_is_400_naming_it() -> None:
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.color=red", {"metadata.name"}.__contains__)
    assert err.value.code == 400
    assert "field label not supported: spec.color" in err.value.message


def test_field_value_of_missing_path_is_empty() -> None:
    assert field_value({"a": {"b": 1}}, "a.c") == ""
    assert field_value({"a": {"b": 1}}, "a.b") == "1"
