"""Issue 13 item 3: the whole status, as the API server encodes it, stays within a budget.

Unit tables for the measure (Go's encoding/json: ``<``, ``>``, ``&`` cost six bytes) and
the cuts, then attacks against devcluster with a controller whose budget is 64 KiB.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core import budget
from controller.handlers import Controller
from testcluster import Cluster
from tests.integration.conftest import Runs, poll, run_controller

BUDGET = 64 * 1024
RESULT = "/airflow/xcom/return.json"


# --- the measure -------------------------------------------------------------------------


# The sizes Go's json.Marshal gives (encoding/json escapes HTML characters by default).
@pytest.mark.parametrize(
    ("value", "go_json"),
    [
        ("a<b", r'"a\u003cb"'),
        ("x>&y", r'"x\u003e\u0026y"'),
        ("é", '"é"'),
        ("日本", '"日本"'),
        ("\n\t\r", r'"\n\t\r"'),
        ("\b\f", r'"\b\f"'),
        ("\x01", r'"\u0001"'),
        ("\x7f", '"\x7f"'),
        ("\u2028", r'"\u2028"'),
        ('"\\', r'"\"\\"'),
        ({"a": "<", "b": [1, True, None]}, r'{"a":"\u003c","b":[1,true,null]}'),
    ],
)
def test_encoded_size_is_go_s(value: object, go_json: str) -> None:
    assert budget.encoded_size(value) == len(go_json.encode())


@given(st.text(max_size=200))
def test_char_cost_adds_up_to_the_encoded_size(text: str) -> None:
    assert budget.encoded_size(text) == 2 + sum(budget.char_cost(c) for c in text)


@pytest.mark.parametrize(
    ("text", "max_bytes", "expected"),
    [
        ("one\ntwo\nthree\n", 100, "one\ntwo\nthree\n"),
        ("one\ntwo\nthree\n", 8, "three\n"),  # "e\nthree\n" starts mid-line: from "three"
        ("one\ntwo\nthree\n", 9, "three\n"),
        ("one\ntwo\nthree\n", 11, "three\n"),
        ("one\ntwo\nthree\n", 12, "two\nthree\n"),
        ("<<<<", 12, "<<"),  # six bytes each
        ("a-very-long-last-line", 4, "line"),  # one line: cut inside it
        ("abc", 0, ""),
    ],
)
def test_cut_front(text: str, max_bytes: int, expected: str) -> None:
    assert budget.cut_front(text, max_bytes) == expected


def status(result: str | None = None, tail: str = "", warnings: int = 0, history: int = 0) -> dict:
    out: dict = {
        "phase": "Succeeded",
        "reason": "Succeeded",
        "message": "ok",
        "conditions": [{"type": "Succeeded", "status": "True", "message": "ok"}],
        "logs": {"pod": "p", "tail": tail, "tailLines": tail.count("\n")},
    }
    if result is not None:
        out["result"], out["resultSize"] = result, len(result.encode())
    if warnings:
        out["warnings"] = [{"reason": "W", "message": "w" * 1000} for _ in range(warnings)]
    if history:
        out["history"] = [
            {"attempt": i + 1, "message": "m" * 5000, "phase": "Failed"} for i in range(history)
        ]
    return out


@pytest.mark.parametrize(
    ("given_status", "cut", "over"),
    [
        (status(tail="line\n" * 100), [], None),
        (status(tail="<line>\n" * 20000), ["log tail"], None),
        (status(tail="x\n" * 20000, warnings=10), ["log tail"], None),
        (
            status(result='"' + "a" * 60000 + '"', tail="x\n" * 100, warnings=10),
            ["log tail", "warning"],
            None,
        ),
        (status(history=101), ["history messages"], None),
        (status(result='"' + "<" * 20000 + '"', tail="x\n" * 100), ["log tail"], "ResultTooLarge"),
        (status(result='"' + "a" * 50000 + '"'), [], None),
    ],
)
def test_fit_cuts_in_order(given_status: dict, cut: list[str], over: str | None) -> None:
    fitted = budget.fit(given_status, BUDGET)
    assert [c for c in cut if not any(c in done for done in fitted.cut)] == []
    if over is None:
        assert fitted.over is None
        assert fitted.size == budget.encoded_size(fitted.status) <= BUDGET
        assert len(fitted.status.get("history") or []) == len(given_status.get("history") or [])
    else:
        assert fitted.over is not None and fitted.over[0] == over
        assert f"over the status budget of {BUDGET} bytes" in fitted.over[1]
        assert str(given_status["resultSize"]) in fitted.over[1]
    tail = (fitted.status.get("logs") or {}).get("tail")
    if tail is not None and tail != given_status["logs"]["tail"]:
        assert given_status["logs"]["tail"].endswith(tail)
        assert fitted.status["logs"]["truncated"] is True


@given(
    st.text(max_size=3000),
    st.lists(st.text(max_size=800), max_size=10),
    st.lists(st.text(max_size=3000), max_size=101),
)
def test_fit_without_a_result_always_fits(tail: str, warnings: list, messages: list) -> None:
    given_status = {
        "phase": "Failed",
        "message": "m",
        "logs": {"tail": tail},
        "warnings": [{"message": w} for w in warnings],
        "history": [{"attempt": i + 1, "message": m} for i, m in enumerate(messages)],
    }
    fitted = budget.fit(given_status, budget.MIN_MAX_STATUS_BYTES)
    assert fitted.over is None
    assert budget.encoded_size(fitted.status) <= budget.MIN_MAX_STATUS_BYTES


# --- against devcluster ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_budget(cluster: Cluster) -> Iterator[Controller]:
    with run_controller(cluster, max_status_bytes=BUDGET) as running:
        yield running


def encoded_status(runs: Runs, name: str) -> int:
    return budget.encoded_size(runs.status(name))


def test_a_result_of_html_characters_ends_result_too_large(small_budget: Controller, runs: Runs):
    # 20,002 bytes of result, well under --max-result-bytes, are 120,006 bytes once encoded
    content = {"parts": ['"', {"text": "<", "repeat": 20000}, '"']}
    runs.create("angle", scenario={"files": {RESULT: content}}, doXcomPush=True)
    final = runs.wait_finished("angle")
    assert (final["phase"], final["reason"]) == ("Failed", "ResultTooLarge"), final["message"]
    assert "20002 bytes" in final["message"]
    assert "120006 as the API server encodes it" in final["message"]
    assert f"status budget of {BUDGET} bytes (--max-status-bytes)" in final["message"]
    assert "result" not in final
    assert encoded_status(runs, "angle") <= BUDGET
    poll(lambda: runs.pods() == [], what="the pod deleted")


def test_many_container_tails_are_cut_to_fit(small_budget: Controller, runs: Runs):
    names = [f"c{i}" for i in range(8)]
    line = "progress <" + "=" * 60 + ">\n"
    scenario = {
        "logs": line * 100,
        "containers": {n: {"logs": line * 100} for n in names},
    }
    template = {
        "spec": {
            "containers": [{"name": "base"}] + [{"name": n, "image": "busybox:1.36"} for n in names]
        }
    }
    runs.create(
        "chatty",
        scenario=scenario,
        podTemplate=template,
        containerLogs=["base", *names],
    )
    final = runs.wait_finished("chatty")
    assert final["phase"] == "Succeeded", final.get("message")
    assert encoded_status(runs, "chatty") <= BUDGET
    assert final["logs"]["truncated"] is True
    # the end of the last container's log survives the cut
    assert final["logs"]["tail"].endswith(line)


@pytest.mark.devcluster_only("injects API faults (devcluster.faults) into the status writes")
def test_a_failed_status_write_does_not_read_the_logs_again(small_budget: Controller, runs: Runs):
    runs.create("again", scenario={"logs": "hello\n", "runSeconds": 0.3})
    runs.wait_status("again", lambda s: s.get("phase") == "Running")
    faults = runs.cluster.devcluster.faults
    faults.error_codes, faults.namespaces = (422,), frozenset({runs.namespace})
    faults.resources, faults.verbs = frozenset({"taskruns"}), frozenset({"patch"})
    faults.error_rate = 1.0
    try:
        poll(
            lambda: (
                runs.cluster.requests.count(namespace=runs.namespace, verb="patch", code=422) >= 2
            ),
            what="two refused status writes",
        )
    finally:
        faults.clear()
    final = runs.wait_finished("again", timeout=15)
    assert final["phase"] == "Succeeded"
    assert final["logs"]["tail"] == "hello\n"
    assert runs.cluster.requests.count(namespace=runs.namespace, subresource="log") == 1


def test_a_refused_status_write_ends_status_too_large_and_disposes_of_the_pod() -> None:
    from controller.core.clock import parse_time
    from controller.core.policies import DeletePod, Observation, PatchStatus, decide
    from tests.unit.controller.test_policies import SETTINGS
    from tests.unit.controller.test_status import T0, pod, taskrun, terminated

    current = {
        "phase": "Running",
        "reason": "Running",
        "podName": "run-1",
        "history": [{"attempt": 1, "message": "m" * 5000, "phase": "Failed"}],
        "logs": {"pod": "run-1", "tail": "old\n"},
    }
    done = pod("Succeeded", name="run-1", base=terminated(0))
    words = "500: etcdserver: request is too large; the patch was 1700000 bytes"
    obs = Observation(taskrun(current, retries=1), done, parse_time(T0), status_refused=words)
    decision = decide(obs, SETTINGS)
    patch = next(a.patch for a in decision.actions if isinstance(a, PatchStatus))
    assert (patch["phase"], patch["reason"]) == ("Failed", "StatusTooLarge")
    assert words in patch["message"]
    assert patch["logs"] == {"tail": None}
    assert len(patch["history"][0]["message"]) < 200
    assert "podName" not in patch  # unchanged: still run-1
    assert any(isinstance(a, DeletePod) and a.name == "run-1" for a in decision.actions)
