"""pytest fixtures: ``pytest_plugins = ["devcluster.pytest_plugin"]``."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from devcluster.cluster import DevCluster
from devcluster.errors import ApiError
from devcluster.resources import NAMESPACES

_counter = itertools.count(1)
T = TypeVar("T")


@pytest.fixture(scope="session")
def devcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One devcluster for the session, kubeconfig in a temp dir."""
    cluster = DevCluster(bookmark_interval=1.0)
    cluster.start()
    cluster.write_kubeconfig(tmp_path_factory.mktemp("devcluster") / "kubeconfig")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def devcluster_ns(devcluster: DevCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test; deleted afterwards (not waited for)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"t{os.getpid() % 1000}-{next(_counter)}-{base}"[:63].rstrip("-")
    devcluster.call(devcluster.store.create(NAMESPACES, None, {"metadata": {"name": name}}))
    try:
        yield name
    finally:
        try:
            devcluster.call(devcluster.store.delete(NAMESPACES, None, name))
        except ApiError:
            pass
        except RuntimeError:  # the session cluster is already gone
            pass


def wait_for(
    condition: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll condition() until it returns a truthy value; raise AssertionError naming ``what``
    on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
