"""results: the xcom sidecar's hand-over, the size cap and the JSON check."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core.results import (
    NO_RESULT,
    LogHandOver,
    Result,
    check,
    decode,
    from_log,
    termination_message,
)
from taskrun.api import Reason

CAP = 1024 * 1024
INLINE_MAX = 4000


def hand_over(data: bytes) -> tuple[str, bytes]:
    """What the sidecar writes for ``data``: (termination message, its log), per the contract."""
    if not data:
        return "none", b""
    if len(data) <= INLINE_MAX:
        digest = hashlib.sha256(data).hexdigest()
        return f"inline:{len(data)}:{digest}:" + data.decode(), b""
    return f"log:{len(data)}:{hashlib.sha256(data).hexdigest()}", data


def round_trip(data: bytes, cap: int = CAP) -> Result:
    message, log = hand_over(data)
    decoded = decode(message, cap)
    if isinstance(decoded, LogHandOver):
        return from_log(log, decoded, cap)
    return decoded


def json_of_size(size: int) -> bytes:
    """A JSON string literal of exactly ``size`` bytes (size >= 2)."""
    return b'"' + b"x" * (size - 2) + b'"'


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (b"", 0),
        (b'{"a": 10}\n', 10),
        (json_of_size(4000), 4000),
        (json_of_size(4096), 4096),
        (json_of_size(4097), 4097),
        (json_of_size(500 * 1024), 500 * 1024),
        (json_of_size(CAP), CAP),
        ('{"ü": "✓"}'.encode(), 13),
    ],
    ids=["0B", "10B", "4000B", "4KiB", "4KiB+1", "500KiB", "cap", "utf8"],
)
def test_results_survive_the_hand_over_byte_for_byte(data, size):
    assert len(data) == size
    result = round_trip(data)
    assert result.ok
    if size == 0:
        assert result == NO_RESULT
    else:
        assert result.text is not None
        assert result.text.encode() == data
        assert result.size == size


def test_numbers_of_any_length_are_valid_json():
    data = b"[" + b"1" * 5000 + b", " + b"2" * 5000 + b".5e3]"
    assert check(data, CAP).text == data.decode()


def test_over_the_cap_names_actual_and_allowed_size_without_reading_the_log():
    data = json_of_size(CAP + 1)
    message, _ = hand_over(data)
    decoded = decode(message, CAP)
    assert isinstance(decoded, Result)
    assert decoded.reason == Reason.RESULT_TOO_LARGE
    assert str(CAP + 1) in (decoded.message or "")
    assert str(CAP) in (decoded.message or "")


def test_inline_results_obey_a_small_cap_too():
    result = round_trip(json_of_size(100), cap=50)
    assert result.reason == Reason.RESULT_TOO_LARGE
    assert result.size == 100


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2", b"\xff\xfe", b"   "])
def test_invalid_json_is_result_invalid(data):
    result = check(data, CAP)
    assert result.reason == Reason.RESULT_INVALID
    assert result.text is None
    assert "not valid JSON" in (result.message or "")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (None, Reason.RESULT_INVALID),
        ("garbage", Reason.RESULT_INVALID),
        ("log:12:abc", Reason.RESULT_INVALID),
        ("log:x:" + "0" * 64, Reason.RESULT_INVALID),
        ("none", None),
        ("", None),
    ],
)
def test_decode_refuses_what_the_contract_does_not_say(message, reason):
    decoded = decode(message, CAP)
    assert isinstance(decoded, Result)
    assert decoded.reason == reason


def test_a_log_that_does_not_match_the_announced_hash_is_refused():
    data = json_of_size(5000)
    handover = LogHandOver(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert from_log(data, handover, CAP).ok
    tampered = data[:-2] + b'y"'
    assert from_log(tampered, handover, CAP).reason == Reason.RESULT_INVALID
    assert from_log(data[:-1], handover, CAP).reason == Reason.RESULT_INVALID


def test_termination_message_comes_from_the_terminated_sidecar():
    def pod(state):
        return {
            "status": {"initContainerStatuses": [{"name": "airflow-xcom-sidecar", "state": state}]}
        }

    assert termination_message(pod({"running": {}})) is None
    assert termination_message(pod({"terminated": {"exitCode": 0, "message": "none"}})) == "none"
    assert termination_message(pod({"terminated": {"exitCode": 0}})) == ""
    assert termination_message({"status": {}}) is None


@given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.lists(c, max_size=50)))
def test_any_json_round_trips(value):
    data = json.dumps(value).encode()
    result = round_trip(data)
    assert result.text is not None
    assert result.text.encode() == data
