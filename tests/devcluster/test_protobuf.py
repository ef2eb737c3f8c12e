import pytest

from devcluster.errors import ApiError
from devcluster.protobuf import MAGIC, decode


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | int | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return MAGIC + field(1, type_meta) + field(2, raw)


def test_config_map() -> None:
    meta = field(1, "c1") + field(3, "ns") + field(11, field(1, "app") + field(2, "x"))
    raw = field(1, meta) + field(2, field(1, "a") + field(2, "b")) + field(4, 1)
    assert decode(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c1", "namespace": "ns", "labels": {"app": "x"}},
        "data": {"a": "b"},
        "immutable": True,
    }


def test_secret_bytes_become_base64_and_empty_strings_are_omitted() -> None:
    meta = field(1, "s") + field(2, "")
    raw = field(1, meta) + field(2, field(1, "pw") + field(2, b"x")) + field(3, "Opaque")
    obj = decode(envelope("v1", "Secret", raw))
    assert obj["data"] == {"pw": "eA=="}
    assert obj["metadata"] == {"name": "s"}
    assert obj["type"] == "Opaque"


def test_namespace_finalizers_are_repeated() -> None:
    raw = field(1, field(1, "n")) + field(2, field(1, "a") + field(1, "b"))
    assert decode(envelope("v1", "Namespace", raw))["spec"] == {"finalizers": ["a", "b"]}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{}", 415),
        (envelope("apps/v1", "Deployment", b""), 415),
        (MAGIC + b"\x0a\xff", 400),
    ],
)
def test_unsupported_bodies(body: bytes, code: int) -> None:
    with pytest.raises(ApiError) as err:
        decode(body)
    assert err.value.code == code
