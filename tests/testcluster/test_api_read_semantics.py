"""The read side of the API as kube-apiserver 1.37 serves it, held on both clusters: list
pagination and resourceVersion, selectors, watch options, 404 bodies, pods/log options and
the Table kubectl asks for. Each test states the real server's behaviour (probed on
--cluster=real); devcluster must answer the same (docs/devcluster.md lists what stays)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testcluster import ApiError, Cluster

ROOT = Path(__file__).resolve().parents[2]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def secrets_path(kube: Cluster, ns: str) -> str:
    # Secrets, not ConfigMaps: a real namespace starts with ConfigMap kube-root-ca.crt.
    return kube.resource("secrets").path(ns)


def make_secrets(kube: Cluster, ns: str, names: list[str]) -> None:
    for name in names:
        kube.create("secrets", ns, {"metadata": {"name": name, "labels": {"n": name[1:]}}})


def names(listing: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


def status_of(call: Callable[[], Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def raw(kube: Cluster, path: str, query: dict[str, Any], accept: str | None = None) -> Any:
    """GET with an Accept header; (status, decoded body or list of watch events)."""
    conn = kube._connection(timeout=20)
    headers = dict(kube._headers)
    if accept:
        headers["Accept"] = accept
    try:
        response = kube._send(conn, "GET", kube._url(path, query), None, headers)
        text = response.read().decode()
    finally:
        conn.close()
    if query.get("watch") and response.status == 200:
        return response.status, [json.loads(line) for line in text.splitlines() if line.strip()]
    return response.status, json.loads(text)


def watch_events(kube: Cluster, path: str, **query: Any) -> list[dict[str, Any]]:
    """A short watch (timeoutSeconds=1) read to its end: its (type, name) events."""
    status, events = raw(kube, path, {"watch": "true", "timeoutSeconds": 1, **query})
    assert status == 200, events
    return [
        {"type": e["type"], "name": e["object"]["metadata"].get("name"), "object": e["object"]}
        for e in events
    ]


# -- list: pagination and resourceVersion ---------------------------------------------------


def test_continue_serves_the_first_pages_snapshot_after_its_last_key(
    kube: Cluster, kube_ns: str
) -> None:
    """A continue token holds the list's resourceVersion and the last key served: the next
    page is the rest of that snapshot, whatever changed since (devcluster counted an offset
    into the live list: an object created before the next page served one twice)."""
    make_secrets(kube, kube_ns, ["s0", "s1", "s2", "s3", "s4"])
    path = secrets_path(kube, kube_ns)
    first = kube.request("GET", path, query={"limit": 2})
    assert names(first) == ["s0", "s1"]
    assert first["metadata"]["remainingItemCount"] == 3
    make_secrets(kube, kube_ns, ["s0a", "s9"])
    kube.delete("secrets", kube_ns, "s3")
    second = kube.request(
        "GET", path, query={"limit": 2, "continue": first["metadata"]["continue"]}
    )
    assert names(second) == ["s2", "s3"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["metadata"]["remainingItemCount"] == 1
    last = kube.request("GET", path, query={"limit": 2, "continue": second["metadata"]["continue"]})
    assert names(last) == ["s4"]
    assert "continue" not in last["metadata"]
    assert "remainingItemCount" not in last["metadata"]
    # Without a limit a token serves the whole rest of the snapshot.
    rest = kube.request("GET", path, query={"continue": first["metadata"]["continue"]})
    assert names(rest) == ["s2", "s3", "s4"]


def test_remaining_item_count_is_left_out_when_a_selector_filters(
    kube: Cluster, kube_ns: str
) -> None:
    make_secrets(kube, kube_ns, ["s1", "s2", "s3"])
    path = secrets_path(kube, kube_ns)
    page = kube.request("GET", path, query={"limit": 1, "labelSelector": "n!=9"})
    assert names(page) == ["s1"]
    assert page["metadata"]["continue"]
    assert "remainingItemCount" not in page["metadata"]
    page = kube.request("GET", path, query={"limit": 1, "fieldSelector": "metadata.name!=s9"})
    assert "remainingItemCount" not in page["metadata"]


def test_a_list_at_a_resource_version(kube: Cluster, kube_ns: str) -> None:
    """Exact (and a version beside a limit, the legacy meaning) is the snapshot at that
    version; NotOlderThan and a bare version are the current state; "0" ignores limit."""
    make_secrets(kube, kube_ns, ["s1", "s2"])
    path = secrets_path(kube, kube_ns)
    rv = kube.request("GET", path)["metadata"]["resourceVersion"]
    make_secrets(kube, kube_ns, ["s0"])
    kube.delete("secrets", kube_ns, "s2")
    exact = kube.request(
        "GET", path, query={"resourceVersion": rv, "resourceVersionMatch": "Exact"}
    )
    assert names(exact) == ["s1", "s2"]
    assert exact["metadata"]["resourceVersion"] == rv
    legacy = kube.request("GET", path, query={"resourceVersion": rv, "limit": 5})
    assert names(legacy) == ["s1", "s2"]
    for query in ({"resourceVersionMatch": "NotOlderThan"}, {}):
        assert names(kube.request("GET", path, query={"resourceVersion": rv, **query})) == [
            "s0",
            "s1",
        ]
    cached = kube.request("GET", path, query={"resourceVersion": "0", "limit": 1})
    assert names(cached) == ["s0", "s1"]
    assert "continue" not in cached["metadata"]


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (
            {"resourceVersionMatch": "NotOlderThan"},
            422,
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            {"resourceVersion": "1", "resourceVersionMatch": "Bogus"},
            422,
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: '
            '"Bogus": supported values: "Exact", "NotOlderThan", ""',
        ),
        (
            {"resourceVersion": "abc"},
            400,
            'invalid resource version: resourceVersion: Invalid value: "abc": '
            'strconv.ParseUint: parsing "abc": invalid syntax',
        ),
    ],
    ids=["match-without-version", "unsupported-match", "not-a-number"],
)
def test_list_options_refused(
    kube: Cluster, kube_ns: str, query: dict[str, str], code: int, message: str
) -> None:
    error = status_of(lambda: kube.request("GET", secrets_path(kube, kube_ns), query=query))
    assert (error.code, error.message) == (code, message)
    if code == 422:
        assert error.body["details"]["kind"] == "ListOptions"
        assert error.body["details"]["group"] == "meta.k8s.io"
        assert "name" not in error.body["details"]
        assert error.body["details"]["causes"][0]["field"] == "resourceVersionMatch"


def test_a_continue_token_with_a_resource_version_match_is_refused(
    kube: Cluster, kube_ns: str
) -> None:
    make_secrets(kube, kube_ns, ["s1", "s2"])
    path = secrets_path(kube, kube_ns)
    token = kube.request("GET", path, query={"limit": 1})["metadata"]["continue"]
    error = status_of(
        lambda: kube.request(
            "GET",
            path,
            query={"limit": 1, "continue": token, "resourceVersion": "1"}
            | {"resourceVersionMatch": "Exact"},
        )
    )
    assert error.code == 422
    assert error.message.endswith(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is "
        "provided"
    )
    error = status_of(lambda: kube.request("GET", path, query={"continue": "garbage"}))
    assert error.code == 400
    assert error.message.startswith("invalid continue token: continue key is not valid")


def test_a_list_at_a_version_the_server_has_not_reached_times_out(
    kube: Cluster, kube_ns: str
) -> None:
    """kube-apiserver waits 3 s for a future resourceVersion, then answers 504."""
    path = secrets_path(kube, kube_ns)
    current = int(kube.request("GET", path)["metadata"]["resourceVersion"])
    future = current + 1_000_000
    error = status_of(lambda: kube.request("GET", path, query={"resourceVersion": future}))
    assert (error.code, error.reason) == (504, "Timeout")
    assert error.message.startswith(f"Timeout: Too large resource version: {future}, current: ")
    assert error.body["details"]["causes"] == [
        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
    ]


def test_built_in_list_items_carry_no_kind_custom_resources_do(kube: Cluster, kube_ns: str) -> None:
    """Go's typed lists leave their items' kind and apiVersion out (a client must take them
    from the list); custom resources' items keep theirs. devcluster sent them everywhere,
    so code reading an item's kind passed here and failed on a real cluster."""
    taskrun_crd(kube)
    make_secrets(kube, kube_ns, ["s1"])
    listing = kube.request("GET", secrets_path(kube, kube_ns))
    assert (listing["kind"], listing["apiVersion"]) == ("SecretList", "v1")
    assert "kind" not in listing["items"][0] and "apiVersion" not in listing["items"][0]
    kube.create(
        "taskruns",
        kube_ns,
        {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun", "metadata": {"name": "t"}}
        | {"spec": {"image": "busybox:1.36"}},
    )
    listing = list_retrying(kube, kube.resource("taskruns").path(kube_ns), {})
    assert listing["kind"] == "TaskRunList"
    item = listing["items"][0]
    assert (item["kind"], item["apiVersion"]) == ("TaskRun", "taskrun.dev/v1alpha1")
    # A watch's objects carry theirs either way.
    events = watch_events(kube, secrets_path(kube, kube_ns), resourceVersion="0")
    assert (events[0]["object"]["kind"], events[0]["object"]["apiVersion"]) == ("Secret", "v1")


def test_get_at_a_resource_version(kube: Cluster, kube_ns: str) -> None:
    """Any version it has reached serves the current object; a version not reached yet
    waits, then 504; a non-numeric one is a 500 (devcluster ignored the parameter)."""
    made = kube.create("secrets", kube_ns, {"metadata": {"name": "s"}})
    path = kube.resource("secrets").path(kube_ns, "s")
    for version in ("0", "1", made["metadata"]["resourceVersion"]):
        assert (
            kube.request("GET", path, query={"resourceVersion": version})["metadata"]["uid"]
            == (made["metadata"]["uid"])
        )
    error = status_of(lambda: kube.request("GET", path, query={"resourceVersion": "abc"}))
    assert (error.code, error.message) == (
        500,
        'resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax',
    )
    future = int(made["metadata"]["resourceVersion"]) + 1_000_000
    error = status_of(lambda: kube.request("GET", path, query={"resourceVersion": future}))
    assert (error.code, error.reason) == (504, "Timeout")


# -- selectors --------------------------------------------------------------------------


def test_label_selector_gt_and_lt(kube: Cluster, kube_ns: str) -> None:
    make_secrets(kube, kube_ns, ["s1", "s2", "s3", "sx"])
    path = secrets_path(kube, kube_ns)
    assert names(kube.request("GET", path, query={"labelSelector": "n>1"})) == ["s2", "s3"]
    assert names(kube.request("GET", path, query={"labelSelector": "n<2"})) == ["s1"]
    assert names(kube.request("GET", path, query={"labelSelector": "n>1,n<3"})) == ["s2"]


def taskrun_crd(kube: Cluster) -> None:
    kube.apply_file(ROOT / "crds" / "taskrun.yaml")
    kube.wait_established("taskruns.taskrun.dev")


@pytest.mark.parametrize(
    ("resource", "selector", "message"),
    [
        (
            "configmaps",
            "data.x=1",
            '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (
            "configmaps",
            "metadata.uid=1",
            '"metadata.uid" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"',
        ),
        ("pods", "spec.foo=1", "field label not supported: spec.foo"),
        ("pods", "metadata.labels.a=b", "field label not supported: metadata.labels.a"),
        ("taskruns", "status.phase=Pending", "field label not supported: status.phase"),
        ("taskruns", "metadata.uid=x", "field label not supported: metadata.uid"),
    ],
)
def test_an_unsupported_field_selector_is_refused(
    kube: Cluster, kube_ns: str, resource: str, selector: str, message: str
) -> None:
    if resource == "taskruns":
        taskrun_crd(kube)
    path = kube.resource(resource).path(kube_ns)
    for query in ({}, {"watch": "true", "timeoutSeconds": 1}):
        error = status_of(
            lambda query=query: kube.request(
                "GET", path, query={"fieldSelector": selector, **query}
            )
        )
        assert (error.code, error.message) == (400, message)


def list_retrying(kube: Cluster, path: str, query: dict[str, str]) -> dict[str, Any]:
    # A real server answers 429 "storage is (re)initializing" for a moment after a CRD
    # becomes established; clients retry it.
    deadline = time.monotonic() + 10
    while True:
        try:
            return kube.request("GET", path, query=query)
        except ApiError as err:
            if err.code != 429 or time.monotonic() > deadline:
                raise
            time.sleep(float((err.body or {}).get("details", {}).get("retryAfterSeconds", 1)))


def test_supported_field_selectors(kube: Cluster, kube_ns: str) -> None:
    """Pods select on their fields (spec.hostNetwork as "false" when left out); custom
    resources on metadata.name and metadata.namespace, what the CLI's watch uses."""
    taskrun_crd(kube)
    body = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "restartPolicy": "Never",
            "nodeName": "no-such-node",
        },
    }
    kube.create("pods", kube_ns, body)
    pods = kube.resource("pods").path(kube_ns)
    for selector, found in [
        ("spec.hostNetwork=false", ["p"]),
        ("spec.hostNetwork=true", []),
        ("spec.nodeName=no-such-node,status.phase!=Running", ["p"]),
        ("spec.restartPolicy=Never,spec.schedulerName=default-scheduler", ["p"]),
    ]:
        assert names(kube.request("GET", pods, query={"fieldSelector": selector})) == found
    kube.create(
        "taskruns",
        kube_ns,
        {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun", "metadata": {"name": "t"}}
        | {"spec": {"image": "busybox:1.36"}},
    )
    taskruns = kube.resource("taskruns").path(kube_ns)
    for selector, found in [
        ("metadata.name=t", ["t"]),
        ("metadata.name!=t", []),
        (f"metadata.namespace={kube_ns}", ["t"]),
    ]:
        listing = list_retrying(kube, taskruns, {"fieldSelector": selector})
        assert names(listing) == found


def test_event_field_selectors(kube: Cluster, kube_ns: str) -> None:
    """The controller and the CLI read a TaskRun's Events by involvedObject.uid."""
    base = {
        "type": "Normal",
        "reason": "Started",
        "message": "m",
        "source": {"component": "test"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
    }
    for name, uid, kind in (("e1", "u-1", "Pod"), ("e2", "u-2", "TaskRun")):
        involved = {"kind": kind, "name": name, "namespace": kube_ns, "uid": uid}
        kube.create(
            "events", kube_ns, {"metadata": {"name": name}, "involvedObject": involved} | base
        )
    path = kube.resource("events").path(kube_ns)
    for selector, found in [
        ("involvedObject.uid=u-2", ["e2"]),
        ("involvedObject.kind=Pod,type=Normal", ["e1"]),
        ("reason=Started,source=test", ["e1", "e2"]),
        ("involvedObject.uid=u-3", []),
    ]:
        assert names(kube.request("GET", path, query={"fieldSelector": selector})) == found
    error = status_of(lambda: kube.request("GET", path, query={"fieldSelector": "message=m"}))
    assert (error.code, error.message) == (400, "field label not supported: message")


# -- watch ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (
            {"resourceVersionMatch": "NotOlderThan", "resourceVersion": "1"},
            422,
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        (
            {"sendInitialEvents": "true"},
            422,
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        (
            {"resourceVersionMatch": "Exact", "resourceVersion": "1"},
            422,
            'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided, "
            'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"]',
        ),
        (
            # Not a 400: the watch cache passes the parse error on as an internal error.
            {"resourceVersion": "abc"},
            500,
            'resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": '
            "invalid syntax",
        ),
    ],
    ids=["match-without-initial-events", "initial-events-without-match", "exact", "not-a-number"],
)
def test_watch_options_refused_before_the_stream(
    kube: Cluster, kube_ns: str, query: dict[str, str], code: int, message: str
) -> None:
    status, body = raw(
        kube, secrets_path(kube, kube_ns), {"watch": "true", "timeoutSeconds": 1, **query}
    )
    assert (status, body["kind"], body["message"]) == (code, "Status", message)


def test_send_initial_events(kube: Cluster, kube_ns: str) -> None:
    """true: the current objects, then a bookmark marked initial-events-end (when bookmarks
    are allowed); false: only changes from now on (devcluster replayed its history)."""
    make_secrets(kube, kube_ns, ["s1", "s2"])
    path = secrets_path(kube, kube_ns)
    options = {"resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true"}
    # A real server sends the bookmark once its watch cache has caught up: under load that
    # may take longer than the 1 s the other watches here last.
    events = watch_events(kube, path, sendInitialEvents="true", timeoutSeconds=5, **options)
    # (periodic bookmarks may follow: the first three events are the point)
    assert [(e["type"], e["name"]) for e in events[:3]] == [
        ("ADDED", "s1"),
        ("ADDED", "s2"),
        ("BOOKMARK", None),
    ]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    without = watch_events(
        kube, path, sendInitialEvents="true", resourceVersionMatch="NotOlderThan"
    )
    assert [(e["type"], e["name"]) for e in without] == [("ADDED", "s1"), ("ADDED", "s2")]
    later = watch_events(kube, path, sendInitialEvents="false", **options)
    assert [e for e in later if e["type"] != "BOOKMARK"] == []


def test_watch_from_a_version_replays_what_came_after(kube: Cluster, kube_ns: str) -> None:
    make_secrets(kube, kube_ns, ["s1"])
    path = secrets_path(kube, kube_ns)
    rv = kube.request("GET", path)["metadata"]["resourceVersion"]
    make_secrets(kube, kube_ns, ["s2"])
    kube.delete("secrets", kube_ns, "s1")
    events = watch_events(kube, path, resourceVersion=rv)
    assert [(e["type"], e["name"]) for e in events] == [("ADDED", "s2"), ("DELETED", "s1")]
    events = watch_events(kube, path, resourceVersion="0")
    assert [(e["type"], e["name"]) for e in events] == [("ADDED", "s2")]


def test_an_object_leaving_a_label_selector_leaves_as_it_was(kube: Cluster, kube_ns: str) -> None:
    """A watch with a label selector sees DELETED when an object stops matching, carrying
    the object as it last matched at the version of the change (devcluster sent the new
    state, which does not match the selector), and ADDED when it matches again."""
    make_secrets(kube, kube_ns, ["s1"])
    path = secrets_path(kube, kube_ns)
    rv = kube.request("GET", path)["metadata"]["resourceVersion"]
    away = kube.patch("secrets", kube_ns, "s1", {"metadata": {"labels": {"n": "9"}}})
    kube.patch("secrets", kube_ns, "s1", {"metadata": {"labels": {"n": "1"}}})
    kube.delete("secrets", kube_ns, "s1")
    events = watch_events(kube, path, resourceVersion=rv, labelSelector="n=1")
    seen = [
        (e["type"], e["object"]["metadata"]["labels"], e["object"]["metadata"]["resourceVersion"])
        for e in events
    ]
    assert seen[0] == ("DELETED", {"n": "1"}, away["metadata"]["resourceVersion"])
    assert [(kind, labels) for kind, labels, _ in seen[1:]] == [
        ("ADDED", {"n": "1"}),
        ("DELETED", {"n": "1"}),
    ]


# -- get of a missing object ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "qualified", "group"),
    [
        ("configmaps", "configmaps", None),
        ("pods", "pods", None),
        ("deployments", "deployments.apps", "apps"),
        ("taskruns", "taskruns.taskrun.dev", "taskrun.dev"),
    ],
)
def test_a_missing_object_is_a_404_naming_it(
    kube: Cluster, kube_ns: str, resource: str, qualified: str, group: str | None
) -> None:
    """The core group is left out of details (devcluster sent "group": "")."""
    if resource == "taskruns":
        taskrun_crd(kube)
    error = status_of(lambda: kube.request("GET", kube.resource(resource).path(kube_ns, "nope")))
    assert (error.code, error.reason) == (404, "NotFound")
    assert error.message == f'{qualified} "nope" not found'
    expected = {"name": "nope", "kind": resource} | ({"group": group} if group else {})
    assert error.body["details"] == expected


def test_an_unknown_resource_is_a_plain_404(kube: Cluster, kube_ns: str) -> None:
    error = status_of(lambda: kube.request("GET", f"/api/v1/namespaces/{kube_ns}/nothings/x"))
    assert (error.code, error.reason) == (404, "NotFound")
    assert error.message == "the server could not find the requested resource"
    assert error.body["details"] == {}


# -- pods/log -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"tailLines": -1}, "tailLines: Invalid value: -1: must be greater than or equal to 0"),
        ({"limitBytes": 0}, "limitBytes: Invalid value: 0: must be greater than 0"),
        ({"sinceSeconds": 0}, "sinceSeconds: Invalid value: 0: must be greater than 0"),
        (
            {"sinceSeconds": 5, "sinceTime": "2026-01-01T00:00:00Z"},
            "[]: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
        ),
    ],
    ids=["tailLines", "limitBytes", "sinceSeconds", "both-since"],
)
def test_log_options_are_checked_before_the_pod_is_looked_up(
    kube: Cluster, kube_ns: str, query: dict[str, Any], message: str
) -> None:
    """A 422 PodLogOptions even for a pod that does not exist (devcluster looked the pod
    and its node up first, and did not check these at all)."""
    path = kube.resource("pods").path(kube_ns, "no-such-pod", "log")
    error = status_of(lambda: kube.request("GET", path, query=query, raw=True))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == f'PodLogOptions "no-such-pod" is invalid: {message}'
    assert error.body["details"]["kind"] == "PodLogOptions"
    assert "group" not in error.body["details"]


def test_the_log_of_a_pod_not_bound_to_a_node_is_empty(kube: Cluster, kube_ns: str) -> None:
    """No node, no kubelet to ask: kube-apiserver answers 200 with nothing, whatever the
    options (devcluster answered the kubelet's 400 "waiting to start"). The container is
    still checked first."""
    body = {
        "metadata": {"name": "u"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "restartPolicy": "Never",
            "nodeSelector": {"no-node": "has-this"},
        },
    }
    kube.create("pods", kube_ns, body)
    path = kube.resource("pods").path(kube_ns, "u", "log")
    for query in ({}, {"container": "c", "previous": "true"}, {"follow": "true"}):
        assert kube.request("GET", path, query=query, raw=True) == ""
    error = status_of(lambda: kube.request("GET", path, query={"container": "zz"}, raw=True))
    assert (error.code, error.message) == (400, "container zz is not valid for pod u")


def test_the_log_of_a_pod_bound_to_a_missing_node(kube: Cluster, kube_ns: str) -> None:
    """kube-apiserver's node lookup fails as a 404 naming the node as a pod (devcluster
    named it a node)."""
    body = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "restartPolicy": "Never",
            "nodeName": "no-such-node",
        },
    }
    kube.create("pods", kube_ns, body)
    path = kube.resource("pods").path(kube_ns, "p", "log")
    error = status_of(lambda: kube.request("GET", path, raw=True))
    assert (error.code, error.reason, error.message) == (
        404,
        "NotFound",
        'pods "no-such-node" not found',
    )
    assert error.body["details"] == {"name": "no-such-node", "kind": "pods"}


# -- Table (kubectl get) ----------------------------------------------------------------------


def columns(table: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]


def test_tables_of_pods_configmaps_and_taskruns(kube: Cluster, kube_ns: str) -> None:
    taskrun_crd(kube)
    body = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "restartPolicy": "Never",
            "nodeName": "no-such-node",
        },
    }
    created = kube.create("pods", kube_ns, body)
    status, table = raw(kube, kube.resource("pods").path(kube_ns), {}, TABLE)
    assert status == 200 and table["kind"] == "Table"
    # Restarts is a string column ("3 (5m ago)"), devcluster had it an integer.
    assert columns(table) == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Status", "string", 0),
        ("Restarts", "string", 0),
        ("Age", "string", 0),
        ("IP", "string", 1),
        ("Node", "string", 1),
        ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["p", "0/1", "Pending", "0"]
    assert cells[5:] == ["<none>", "no-such-node", "<none>", "<none>"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    # One object's Table carries its resourceVersion too.
    status, one = raw(kube, kube.resource("pods").path(kube_ns, "p"), {}, TABLE)
    assert one["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    kube.create("configmaps", kube_ns, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    status, table = raw(
        kube, kube.resource("configmaps").path(kube_ns), {"fieldSelector": "metadata.name=a"}, TABLE
    )
    assert columns(table) == [("Name", "string", 0), ("Data", "string", 0), ("Age", "string", 0)]
    assert table["rows"][0]["cells"][:2] == ["a", 1]  # an integer in a "string" column

    kube.create(
        "taskruns",
        kube_ns,
        {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun", "metadata": {"name": "t"}}
        | {"spec": {"image": "busybox:1.36"}},
    )
    path = kube.resource("taskruns").path(kube_ns)
    list_retrying(kube, path, {})
    status, table = raw(kube, path, {"includeObject": "None"}, TABLE)
    assert columns(table) == [
        ("Name", "string", 0),
        ("Phase", "string", 0),
        ("Reason", "string", 0),
        ("Exit", "integer", 0),
        ("Pod", "string", 0),
        ("Age", "date", 0),
        ("Duration", "string", 0),
    ]
    assert table["columnDefinitions"][0]["description"].startswith(
        "Name must be unique within a namespace. Is required when creating resources"
    )
    row = table["rows"][0]
    assert row["object"] is None  # includeObject=None: null, not left out
    assert row["cells"][:5] == ["t", None, None, None, None]


# -- real kubectl ---------------------------------------------------------------------------

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent))


def kubectl(kube: Cluster, ns: str, *args: str) -> str:
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kube.kubeconfig_path), "-n", ns, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def rows(text: str, keep: int) -> list[list[str]]:
    """kubectl's table as words, the first ``keep`` columns (later ones hold ages)."""
    return [line.split()[:keep] for line in text.strip().splitlines()]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed in the venv")
def test_kubectl_get_pages_selects_and_prints_as_on_a_real_cluster(
    kube: Cluster, kube_ns: str
) -> None:
    """kubectl 1.37 pages with limit/continue (--chunk-size), asks for Tables and sends
    set-based and field selectors: the same output from both servers."""
    taskrun_crd(kube)
    make_secrets(kube, kube_ns, ["s1", "s2", "s3", "s4", "s5"])
    out = kubectl(kube, kube_ns, "get", "secrets", "--chunk-size=2", "--sort-by=.metadata.name")
    assert rows(out, 3) == [["NAME", "TYPE", "DATA"]] + [
        [f"s{i}", "Opaque", "0"] for i in range(1, 6)
    ]
    out = kubectl(kube, kube_ns, "get", "secrets", "-l", "n>3", "-o", "name", "--chunk-size=1")
    assert out.split() == ["secret/s4", "secret/s5"]
    body = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "restartPolicy": "Never",
            "nodeSelector": {"no-node": "has-this"},
        },
    }
    kube.create("pods", kube_ns, body)
    out = kubectl(
        kube, kube_ns, "get", "pods", "-o", "wide", "--field-selector", "spec.hostNetwork=false"
    )
    assert rows(out, 4) == [["NAME", "READY", "STATUS", "RESTARTS"], ["p", "0/1", "Pending", "0"]]
    assert kubectl(kube, kube_ns, "logs", "p") == ""
    kube.create(
        "taskruns",
        kube_ns,
        {"apiVersion": "taskrun.dev/v1alpha1", "kind": "TaskRun", "metadata": {"name": "t"}}
        | {"spec": {"image": "busybox:1.36"}},
    )
    list_retrying(kube, kube.resource("taskruns").path(kube_ns), {})
    out = kubectl(kube, kube_ns, "get", "taskruns", "--chunk-size=1")
    header = out.splitlines()[0].split()
    assert header[:6] == ["NAME", "PHASE", "REASON", "EXIT", "POD", "AGE"]
    assert out.splitlines()[1].split()[0] == "t"
