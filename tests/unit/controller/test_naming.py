import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core import naming

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# TaskRun names are DNS-1123 subdomains: labels joined by dots, at most 253 characters.
subdomain_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
taskrun_names = (
    st.lists(subdomain_labels, min_size=1, max_size=12)
    .map(".".join)
    .filter(lambda n: len(n) <= 253)
)


@pytest.mark.parametrize(
    ("name", "attempt", "expected"),
    [
        ("hello", 1, "hello-1"),
        ("hello", 12, "hello-12"),
        ("a" * 61, 1, "a" * 61 + "-1"),  # exactly 63
    ],
)
def test_pod_name_plain_when_it_fits(name: str, attempt: int, expected: str) -> None:
    assert naming.pod_name(name, attempt) == expected


@pytest.mark.parametrize(
    ("name", "attempt"),
    [("a" * 62, 1), ("a" * 61, 10), ("x" * 253, 3), ("my.task.run", 1), ("b" * 100, 999)],
)
def test_pod_name_cut_and_hashed(name: str, attempt: int) -> None:
    got = naming.pod_name(name, attempt)
    assert len(got) <= 63
    assert DNS_LABEL.match(got)
    assert got.endswith(f"-{attempt}")
    assert got != f"{name}-{attempt}"


def test_pod_name_hash_separates_names_with_a_common_prefix() -> None:
    assert naming.pod_name("a" * 70 + "x", 1) != naming.pod_name("a" * 70 + "y", 1)
    assert naming.pod_name("my.run", 1) != naming.pod_name("my-run", 1)


def test_pod_name_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt"):
        naming.pod_name("x", 0)


@given(taskrun_names, st.integers(min_value=1, max_value=10**6))
def test_pod_name_always_a_deterministic_dns_label(name: str, attempt: int) -> None:
    got = naming.pod_name(name, attempt)
    assert len(got) <= 63
    assert DNS_LABEL.match(got), got
    assert got == naming.pod_name(name, attempt)
    assert got.endswith(f"-{attempt}")


@given(taskrun_names, taskrun_names, st.integers(1, 50), st.integers(1, 50))
def test_pod_names_differ_for_different_runs_or_attempts(
    a: str, b: str, attempt_a: int, attempt_b: int
) -> None:
    if (a, attempt_a) != (b, attempt_b):
        assert naming.pod_name(a, attempt_a) != naming.pod_name(b, attempt_b)


# Expected values computed with KPO 10.25's pod_generator.make_safe_label_value.
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ok", "ok"),
        ("my_dag.v2", "my_dag.v2"),
        ("", ""),
        ("-hello world-", "helloworld-fb71536d7"),
        ("a" * 63, "a" * 63),
        ("a" * 64, "a" * 53 + "-014842d48"),
        ("manual__2026-11-24T04:00:00+00:00", "manual__2026-11-24T0400000000-b46940afd"),
        ("__x__", "x-2fda5f99b"),
        ("Ünïcode", "ncode-6c51cc177"),
        ("x" * 100 + "!", "x" * 53 + "-da7ee123e"),
    ],
)
def test_make_safe_label_value_matches_kpo(value: str, expected: str) -> None:
    assert naming.make_safe_label_value(value) == expected


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@given(st.text(max_size=300))
def test_make_safe_label_value_is_always_valid(value: str) -> None:
    got = naming.make_safe_label_value(value)
    assert len(got) <= 63
    # A fully stripped value leaves "-<hash>", which KPO also produces; only its start is off.
    assert LABEL_VALUE.match(got.lstrip("-")), got


def test_pod_labels() -> None:
    labels = naming.pod_labels("run.one", 2)
    assert labels == {
        "taskrun.dev/name": "run.one",
        "taskrun.dev/attempt": "2",
        "app.kubernetes.io/managed-by": "taskrun-controller",
    }


def owned(*refs: dict[str, object]) -> dict[str, object]:
    return {"metadata": {"ownerReferences": list(refs)}}


TASKRUN_REF = {
    "apiVersion": "taskrun.dev/v1alpha1",
    "kind": "TaskRun",
    "name": "r",
    "uid": "u-1",
    "controller": True,
}


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (owned(TASKRUN_REF), "u-1"),
        (owned({"apiVersion": "v1", "kind": "ConfigMap", "uid": "c"}, TASKRUN_REF), "u-1"),
        (owned({**TASKRUN_REF, "controller": False}), None),
        (owned({**TASKRUN_REF, "apiVersion": "tekton.dev/v1"}), None),
        (owned({**TASKRUN_REF, "kind": "Job"}), None),
        ({"metadata": {}}, None),
        ({}, None),
    ],
)
def test_owner_uid(pod: dict[str, object], expected: str | None) -> None:
    assert naming.owner_uid(pod) == expected


@given(taskrun_names, st.integers(1, 10**6))
def test_pod_labels_are_valid_label_values_for_every_taskrun_name(name: str, attempt: int) -> None:
    for value in naming.pod_labels(name, attempt).values():
        assert len(value) <= 63
        assert LABEL_VALUE.match(value), value
    if len(name) <= 63:
        assert naming.pod_labels(name, attempt)["taskrun.dev/name"] == name
