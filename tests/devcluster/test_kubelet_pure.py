"""The kubelet's pure helpers: scheduling fit, quantities, QoS, images, termination messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devcluster.kubelet import (
    FALLBACK_LOG_BYTES,
    TERMINATION_MESSAGE_MAX,
    Kubelet,
    go_duration,
    image_id,
    normalize_image,
    parse_quantity,
    pod_requests,
    qos_class,
    scheduling_failure,
    termination_message,
)

NODE: dict[str, Any] = {
    "metadata": {
        "name": "devcluster-node",
        "labels": {"kubernetes.io/os": "linux", "zone": "a", "cores": "8"},
    },
    "spec": {},
    "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}},
}
TAINTED = {**NODE, "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}
PREFER = {**NODE, "spec": {"taints": [{"key": "soft", "effect": "PreferNoSchedule"}]}}

AFFINITY = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."


def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
            }
        }
    }


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}


def container(**resources: Any) -> dict[str, Any]:
    return {"name": "c", "image": "x", "resources": resources}


@pytest.mark.parametrize(
    ("spec", "node", "starts_with"),
    [
        ({}, NODE, None),
        ({"nodeSelector": {"zone": "a"}}, NODE, None),
        ({"nodeSelector": {"zone": "b"}}, NODE, AFFINITY),
        ({"nodeSelector": {"missing": ""}}, NODE, AFFINITY),
        (affinity(expr("zone", "In", "a", "b")), NODE, None),
        (affinity(expr("zone", "NotIn", "a")), NODE, AFFINITY),
        (affinity(expr("missing", "NotIn", "a")), NODE, None),
        (affinity(expr("zone", "Exists")), NODE, None),
        (affinity(expr("zone", "DoesNotExist")), NODE, AFFINITY),
        (affinity(expr("cores", "Gt", "4")), NODE, None),
        (affinity(expr("cores", "Lt", "4")), NODE, AFFINITY),
        (affinity(expr("zone", "Gt", "4")), NODE, AFFINITY),
        (affinity(expr("zone", "In", "b"), expr("zone", "In", "a")), NODE, None),
        (affinity({}), NODE, AFFINITY),
        (
            affinity(
                {
                    "matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["devcluster-node"]}
                    ]
                }
            ),
            NODE,
            None,
        ),
        ({}, TAINTED, "0/1 nodes are available: 1 node(s) had untolerated taint {gpu: yes}."),
        ({"tolerations": [{"key": "gpu", "operator": "Exists"}]}, TAINTED, None),
        ({"tolerations": [{"operator": "Exists"}]}, TAINTED, None),
        ({"tolerations": [{"key": "gpu", "value": "yes"}]}, TAINTED, None),
        ({"tolerations": [{"key": "gpu", "value": "no"}]}, TAINTED, "0/1 nodes are available"),
        (
            {"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}]},
            TAINTED,
            "0/1 nodes are available",
        ),
        ({}, PREFER, None),
        ({"containers": [container(requests={"cpu": "500m", "memory": "1Gi"})]}, NODE, None),
        (
            {"containers": [container(requests={"cpu": "9"})]},
            NODE,
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod.",
        ),
        (
            {"containers": [container(limits={"cpu": "16", "memory": "64Gi"})]},
            NODE,
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
        ),
        (
            {"containers": [container(limits={"nvidia.com/gpu": "1"})]},
            NODE,
            "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
        ),
    ],
)
def test_scheduling_failure(spec: dict[str, Any], node: dict[str, Any], starts_with: str | None):
    message = scheduling_failure(spec, node)
    if starts_with is None:
        assert message is None
    else:
        assert message is not None and message.startswith(starts_with)
        assert "preemption: 0/1 nodes are available: 1 " in message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (1.5, "1.5s"), (0.012345, "12.345ms"), (2, "2s"), (0.0000015, "1.5\u00b5s"),
     (1e-9, "1ns"), (61.25, "1m1.25s"), (3600, "1h0m0s"), (60.5, "1m0.5s")],
)  # fmt: skip
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


@pytest.mark.parametrize(
    ("quantity", "value"),
    [
        ("1", 1.0),
        ("500m", 0.5),
        ("0.25", 0.25),
        ("1Ki", 1024.0),
        ("128Mi", 128 * 2.0**20),
        ("2Gi", 2 * 2.0**30),
        ("1G", 1e9),
        ("1e3", 1000.0),
        (3, 3.0),
    ],
)
def test_parse_quantity(quantity: Any, value: float) -> None:
    assert parse_quantity(quantity) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["", "abc", "1Xi", "--1"])
def test_parse_quantity_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad)


def test_pod_requests_count_sidecars_with_init_and_main_containers() -> None:
    spec = {
        "initContainers": [
            {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
            {"name": "big-init", "resources": {"requests": {"cpu": "6"}}},
        ],
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "3"}}},
        ],
    }
    assert pod_requests(spec) == {"cpu": 7.0, "memory": 2.0**30}


@pytest.mark.parametrize(
    ("containers", "expected"),
    [
        ([{}], "BestEffort"),
        ([{"resources": {"requests": {"cpu": "1"}}}], "Burstable"),
        ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}], "Guaranteed"),
        (
            [
                {
                    "resources": {
                        "limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                    }
                }
            ],
            "Burstable",
        ),
        (
            [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, {}],
            "Burstable",
        ),
    ],
)
def test_qos_class(containers: list[dict[str, Any]], expected: str) -> None:
    assert qos_class({"containers": containers}) == expected


@pytest.mark.parametrize(
    ("image", "normalized"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("apache/airflow:3.0.0", "docker.io/apache/airflow:3.0.0"),
        ("ghcr.io/org/app", "ghcr.io/org/app:latest"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        ("localhost/app", "localhost/app:latest"),
        ("alpine@sha256:" + "a" * 64, "docker.io/library/alpine@sha256:" + "a" * 64),
    ],
)
def test_normalize_image(image: str, normalized: str) -> None:
    assert normalize_image(image) == normalized
    repo = normalized.split("@")[0].rsplit(":", 1)[0] if "@" not in normalized else None
    if repo and "/" in repo:
        assert image_id(image).startswith(repo + "@sha256:")


def no_log() -> bytes:
    raise AssertionError("the log is only read for FallbackToLogsOnError failures")


@pytest.mark.parametrize(
    ("file_bytes", "policy", "failed", "log", "budget", "expected"),
    [
        (None, "File", False, None, 6144, ""),
        (b"ok", "File", True, None, 6144, "ok"),
        (b"a" * 5000 + b"Z", "File", False, None, 6144, ("a" * 5000 + "Z")[-4096:]),
        (b"x" * 4096, "File", False, None, 3072, "x" * 3072),
        (None, "FallbackToLogsOnError", True, b"log\n", 6144, "log\n"),
        (b"", "FallbackToLogsOnError", True, b"q" * 3000, 6144, "q" * FALLBACK_LOG_BYTES),
        (None, "FallbackToLogsOnError", False, None, 6144, ""),
        (b"m", "FallbackToLogsOnError", True, None, 6144, "m"),
        (b"\xff\xfe", "File", False, None, 6144, "\ufffd\ufffd"),
    ],
)
def test_termination_message(
    file_bytes: bytes | None,
    policy: str,
    failed: bool,
    log: bytes | None,
    budget: int,
    expected: str,
) -> None:
    def tail() -> bytes:
        return no_log() if log is None else log

    got = termination_message(
        file_bytes, policy=policy, failed=failed, log_tail=tail, budget=budget
    )
    assert got == expected


def go_json_string(raw: bytes) -> str:
    """Go's encoding/json on a string holding ``raw``: one U+FFFD per byte that does not
    start a valid UTF-8 character (utf8.DecodeRuneInString's width-1 RuneError)."""
    out, i = [], 0
    while i < len(raw):
        for width in (1, 2, 3, 4):
            try:
                char = raw[i : i + width].decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append(char)
            i += width
            break
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b'"\xff"', '"\ufffd"'),
        # a cut three-byte character is two bad bytes: two replacements, as Go writes them
        (b"a\xe2\x82", "a\ufffd\ufffd"),
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # an encoded surrogate
        ("é€😀".encode(), "é€😀"),
    ],
)
def test_termination_messages_are_made_valid_utf8_as_go_does(raw: bytes, text: str) -> None:
    assert (
        termination_message(raw, policy="File", failed=False, log_tail=no_log, budget=100) == text
    )


@settings(deadline=None)
@given(st.binary(max_size=9000), st.integers(1, 12288))
def test_termination_message_never_exceeds_the_caps(data: bytes, budget: int) -> None:
    got = termination_message(data, policy="File", failed=False, log_tail=no_log, budget=budget)
    raw = data[-TERMINATION_MESSAGE_MAX:][:budget]
    assert got == go_json_string(raw)
    assert len(raw) <= min(TERMINATION_MESSAGE_MAX, budget)


def test_max_pods_is_the_nodes_pods_capacity() -> None:
    # The node agent's --max-pods: what kube-scheduler counts pods against.
    node = Kubelet(None, max_pods=5000)._node_object()  # type: ignore[arg-type]
    assert node["status"]["capacity"]["pods"] == "5000"
    assert node["status"]["allocatable"]["pods"] == "5000"
    assert Kubelet(None)._node_object()["status"]["capacity"]["pods"] == "110"  # type: ignore[arg-type]
