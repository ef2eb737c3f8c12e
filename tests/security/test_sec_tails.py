"""Issue 13, items 8 and 10: the log tail is the log's true last lines within its budget.

The kubelet applies limitBytes from the start of the tailLines window, so a read of both
loses the end of logs with long lines; and a line ends at "\\n" only (what tailLines counts),
not at "\\r", U+2028 or U+2029. Checked against a reference written from the whole log.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import k8s
from controller.core.tails import LogTail, count_lines, tail_of
from controller.k8s import Client
from devcluster import DevCluster
from devcluster.logs import LogStore
from devcluster.resources import NAMESPACES, PODS
from tests.integration.conftest import Plain, Runs, run_controller

# Line breaks of every kind Python knows, and characters of every UTF-8 length.
ALPHABET = st.sampled_from(["a", "b", " ", "\n", "\r", "\u2028", "\u2029", "\x0b", "é", "€", "😀"])
LOGS = st.lists(
    st.one_of(st.text(ALPHABET, max_size=12), st.text(st.sampled_from("xé"), min_size=40)),
    max_size=12,
).map("".join)


def reference(text: str, lines: int, max_bytes: int) -> LogTail:
    """The last ``lines`` lines of ``text`` within ``max_bytes``, written character-wise."""
    all_lines = re.findall(r"[^\n]*\n|[^\n]+\Z", text)
    chosen = all_lines[-lines:]
    out = ""
    for line in reversed(chosen):
        if len((line + out).encode()) > max_bytes:
            break
        out = line + out
    if not out and chosen:
        for char in reversed(chosen[-1]):
            if len((char + out).encode()) > max_bytes:
                break
            out = char + out
    return LogTail(text=out, truncated=out != text)


@given(text=LOGS, lines=st.integers(1, 8), max_bytes=st.integers(1, 80))
def test_tail_of_a_whole_log_is_its_true_last_lines(text: str, lines: int, max_bytes: int) -> None:
    assert tail_of(text.encode(), lines, max_bytes) == reference(text, lines, max_bytes)


@given(text=LOGS)
def test_lines_are_counted_at_newlines_only(text: str) -> None:
    assert count_lines(text) == len(re.findall(r"[^\n]*\n|[^\n]+\Z", text))


@pytest.mark.parametrize(
    ("log", "lines", "tail"),
    [
        ("step 1\rstep 2\rstep 3\ndone\n", 2, "step 1\rstep 2\rstep 3\ndone\n"),
        ('{"m": "a\u2028b"}\n{"m": "c\u2029d"}\n', 2, '{"m": "a\u2028b"}\n{"m": "c\u2029d"}\n'),
    ],
)
def test_carriage_returns_and_unicode_separators_do_not_end_lines(
    log: str, lines: int, tail: str
) -> None:
    assert tail_of(log.encode(), lines, 1000) == LogTail(tail, truncated=False)


# --- the reads: Client.read_tail against devcluster's pods/log -----------------------------


@dataclass
class LogServer:
    cluster: DevCluster
    logs: LogStore
    namespace: str = "tails"
    pod: str = "p"

    def set_log(self, data: bytes) -> None:
        self.logs.forget(self.namespace, self.pod)
        self.logs.open(self.namespace, self.pod, "base")
        self.logs.append(self.namespace, self.pod, "base", data)
        self.logs.close(self.namespace, self.pod, "base")

    def read_tail(self, lines: int, max_bytes: int) -> LogTail:
        async def read() -> LogTail:
            client = Client(Plain(self.cluster.url))
            try:
                return await client.read_tail(
                    self.namespace, self.pod, "base", lines=lines, max_bytes=max_bytes
                )
            finally:
                await client.close()

        return asyncio.run(read())


@pytest.fixture(scope="module")
def log_server() -> Iterator[LogServer]:
    """devcluster without its kubelet: the test writes the pod's log itself."""
    cluster = DevCluster(kubelet=False)
    cluster.start()
    logs = LogStore()
    cluster.kubelet = SimpleNamespace(logs=logs)
    server = LogServer(cluster, logs)
    cluster.call(cluster.store.create(NAMESPACES, None, {"metadata": {"name": server.namespace}}))
    pod = {
        "metadata": {"name": server.pod, "namespace": server.namespace},
        "spec": {"containers": [{"name": "base", "image": "busybox"}]},
    }
    cluster.call(cluster.store.create(PODS, server.namespace, pod))
    try:
        yield server
    finally:
        cluster.stop()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=LOGS, lines=st.integers(1, 8), max_bytes=st.integers(1, 80))
def test_the_read_tail_is_the_logs_true_last_lines(
    log_server: LogServer, text: str, lines: int, max_bytes: int
) -> None:
    log_server.set_log(text.encode())
    assert log_server.read_tail(lines, max_bytes) == reference(text, lines, max_bytes)


def test_long_last_lines_keep_the_end_of_the_log(log_server: LogServer) -> None:
    lines = [f"{i:03d} " + "x" * 3000 + "\n" for i in range(50)] + ["the end é\n"]
    text = "".join(lines)
    log_server.set_log(text.encode())
    got = log_server.read_tail(10, 16384)
    assert got == reference(text, 10, 16384)
    assert got.text.endswith("the end é\n")
    assert got.text.startswith("045 ")  # five whole lines of 3005 bytes, then the last one


def test_a_last_line_too_long_to_read_is_named_not_faked(
    log_server: LogServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(k8s, "MAX_LAST_LINE_READ_BYTES", 4096)
    log_server.set_log(b"start\n" + b"y" * 10000 + b"end")
    got = log_server.read_tail(5, 100)
    assert got.truncated
    assert got.text == "[the log's last line is longer than 4096 bytes; its end was not read]\n"


def test_a_huge_last_line_costs_few_reads(log_server: LogServer) -> None:
    log_server.set_log(b"a\n" * 10 + "é".encode() * 2_500_000)
    before = len(log_server.cluster.requests.filter(resource="pods", subresource="log"))
    got = log_server.read_tail(100, 1001)
    assert got == LogTail(text="é" * 500, truncated=True)
    reads = log_server.cluster.requests.filter(resource="pods", subresource="log")[before:]
    # The window, a binary search over 100 line counts, then the last line streamed.
    assert 1 <= len(reads) <= 1 + 7 + 1


# --- end to end: a TaskRun's status.logs.tail ----------------------------------------------


def test_a_taskruns_tail_ends_with_the_logs_last_lines(runs: Runs) -> None:
    # 90 KB in lines of 3 KB: more than the first read of the window takes.
    text = "".join(f"line {i} é" + "x" * 3000 + "\n" for i in range(30))
    text += "progress 1\rprogress 2\n"
    text += '{"msg": "a\u2028b"}\n' + "last line\n"
    with run_controller(runs.cluster, log_tail_lines=5, log_tail_bytes=16384):
        runs.create("tail", {"logs": text, "runSeconds": 0.05})
        status = runs.wait_finished("tail")
    expected = reference(text, 5, 16384)
    assert status["logs"]["tail"] == expected.text
    assert status["logs"]["tailLines"] == 5
    assert status["logs"]["truncated"] is True
