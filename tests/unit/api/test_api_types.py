"""Scalar types: quantities, int-or-string, times, names, label keys and values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from taskrun.api.types import (
    DnsLabel,
    DnsSubdomain,
    IntOrString,
    LabelValue,
    QualifiedName,
    Quantity,
    Time,
)


class Probe(BaseModel):
    model_config = ConfigDict(strict=True)

    quantity: Quantity | None = None
    int_or_string: IntOrString | None = None
    time: Time | None = None
    label: DnsLabel | None = None
    subdomain: DnsSubdomain | None = None
    key: QualifiedName | None = None
    value: LabelValue | None = None


def accepts(field: str, value: Any) -> bool:
    try:
        Probe.model_validate({field: value})
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        (0, True),
        ("1", True),
        ("500m", True),
        ("0.5", True),
        (".5", True),
        ("1.", True),
        ("128Mi", True),
        ("2Gi", True),
        ("1Ei", True),
        ("100n", True),
        ("3u", True),
        ("4k", True),
        ("1e3", True),
        ("1E-2", True),
        ("+1", True),
        ("-1", True),
        ("1M", True),
        ("", False),
        ("1 Gi", False),
        ("1GB", False),
        ("1Ki1", False),
        ("1mi", False),
        ("Gi", False),
        ("1.2.3", False),
        ("1e", False),
        (0.5, False),
        (True, False),
        (None, True),
    ],
)
def test_quantity(value: Any, ok: bool) -> None:
    assert accepts("quantity", value) is ok


@given(
    st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti", "e3", "E-1"]),
)
def test_quantity_grammar(number: str, suffix: str) -> None:
    assert accepts("quantity", number + suffix)
    assert not accepts("quantity", number + suffix + "x")


@pytest.mark.parametrize(
    ("value", "ok"), [(8080, True), ("http", True), ("25%", True), (True, False), (1.5, False)]
)
def test_int_or_string(value: Any, ok: bool) -> None:
    assert accepts("int_or_string", value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-01-02T03:04:05Z", True),
        ("2026-01-02T03:04:05.123456Z", True),
        ("2026-01-02T03:04:05+02:00", True),
        ("2026-01-02 03:04:05Z", False),
        ("2026-01-02", False),
        (1700000000, False),
    ],
)
def test_time(value: Any, ok: bool) -> None:
    assert accepts("time", value) is ok


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("label", "base", True),
        ("label", "a-1", True),
        ("label", "a" * 63, True),
        ("label", "a" * 64, False),
        ("label", "-a", False),
        ("label", "a.b", False),
        ("label", "A", False),
        ("label", "", False),
        ("subdomain", "a.b-c.d", True),
        ("subdomain", "a..b", False),
        ("subdomain", "a" * 254, False),
        ("key", "app", True),
        ("key", "app.kubernetes.io/name", True),
        ("key", "example.com/A_b.c-d", True),
        ("key", "a" * 63, True),
        ("key", "a" * 64, False),
        ("key", "Example.com/a", False),
        ("key", "/a", False),
        ("key", "a/", False),
        ("key", "a b", False),
        ("key", "_a", False),
        ("value", "", True),
        ("value", "v1.2_3-x", True),
        ("value", "a" * 63, True),
        ("value", "a" * 64, False),
        ("value", "a b", False),
        ("value", "-a", False),
    ],
)
def test_names(field: str, value: str, ok: bool) -> None:
    assert accepts(field, value) is ok
