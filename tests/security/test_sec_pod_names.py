"""Issue 13 item 5: a shortened (hashed) pod name never equals another TaskRun's plain one."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from controller.core import naming
from controller.handlers import Controller
from tests.integration.conftest import Runs

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)
taskrun_names = (
    st.lists(labels, min_size=1, max_size=10).map(".".join).filter(lambda n: len(n) <= 253)
)
long_names = (
    st.builds(lambda a, b: a + "-" + b, labels, labels)
    .map(lambda n: (n * 8)[:200])
    .map(lambda n: n.strip("-") or "x")
)


def plain_owner(pod_name: str) -> tuple[str, int] | None:
    """The (TaskRun name, attempt) whose plain pod name this is, if any could have it."""
    head, sep, tail = pod_name.rpartition("-")
    if not sep or not tail.isdigit() or tail != str(int(tail)) or int(tail) < 1:
        return None
    if len(head) > 253 or not SUBDOMAIN.match(head):
        return None
    return head, int(tail)


def old_scheme(taskrun_name: str, attempt: int) -> str:
    """The scheme before issue 13: ``<head>-<6 hex>-<attempt>``."""
    suffix = f"-{attempt}"
    digest = hashlib.sha256(taskrun_name.encode()).hexdigest()[:6]
    keep = 63 - len(suffix) - len(digest) - 1
    head = re.sub(r"[^a-z0-9-]", "-", taskrun_name.lower())[:keep].strip("-")
    return f"{head}-{digest}{suffix}"


LONG = "nightly-etl.load-warehouse.scheduled-2026-12-04t00-00-00-00-00.try-1"


def test_the_old_scheme_collided_and_the_new_one_does_not() -> None:
    hashed = old_scheme(LONG, 1)
    squatter = plain_owner(hashed)
    assert squatter is not None  # a short TaskRun name whose plain pod name is the same
    assert naming.pod_name(*squatter) == hashed != naming.pod_name(LONG, 1)
    assert naming.pod_name(LONG, 1) != naming.pod_name(*squatter)


@given(taskrun_names, st.integers(1, 10**4))
def test_a_shortened_name_is_nobody_s_plain_name(name: str, attempt: int) -> None:
    got = naming.pod_name(name, attempt)
    if got == f"{name}-{attempt}":
        assert plain_owner(got) == (name, attempt)
    else:
        assert plain_owner(got) is None, got
        assert got.endswith(f"--{attempt}")


@given(long_names, long_names, st.integers(1, 101), st.integers(1, 101))
def test_shortened_names_differ_for_different_runs(a: str, b: str, x: int, y: int) -> None:
    if (a, x) != (b, y):
        assert naming.pod_name(a, x) != naming.pod_name(b, y)


@given(taskrun_names, st.integers(1, 10**6))
def test_every_pod_name_is_a_dns_label(name: str, attempt: int) -> None:
    assert naming.is_dns_label(naming.pod_name(name, attempt))


def test_a_short_taskrun_cannot_take_a_long_one_s_pod(controller: Controller, runs: Runs) -> None:
    """The squatter of the old scheme runs first; the long-named TaskRun still gets its pod."""
    squatter = plain_owner(old_scheme(LONG, 1))
    assert squatter is not None
    runs.create(squatter[0], onFinishAction="keep_pod")
    assert runs.wait_finished(squatter[0])["phase"] == "Succeeded"
    runs.create(LONG)
    status = runs.wait_finished(LONG)
    assert (status["phase"], status["podName"]) == ("Succeeded", naming.pod_name(LONG, 1)), status


def test_a_pod_made_under_the_old_scheme_is_still_found_after_an_upgrade() -> None:
    from controller.core.attempt import attempt_pod_name

    old = old_scheme(LONG, 1)
    running = {"metadata": {"name": LONG}, "status": {"phase": "Running", "attempts": 1}}
    assert attempt_pod_name(running) == naming.pod_name(LONG, 1)
    running["status"]["podName"] = old
    assert attempt_pod_name(running) == old
    # the next attempt, and a finished run, use the scheme of the day
    retrying = {
        "metadata": {"name": LONG},
        "status": {"phase": "Pending", "attempts": 1, "podName": old, "history": [{"attempt": 1}]},
    }
    assert attempt_pod_name(retrying) == naming.pod_name(LONG, 2)
