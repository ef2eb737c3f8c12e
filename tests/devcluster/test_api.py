"""The HTTP API, as clients see it."""

import threading
import time
from types import SimpleNamespace
from typing import Any

from devcluster_http import call, stream

from devcluster import DevCluster
from devcluster.logs import LogStore
from devcluster.pytest_plugin import wait_for

CM = "/api/v1/namespaces/{ns}/configmaps"


def cm(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, **meta},
        "data": {"k": "v"},
    }


def test_discovery(devcluster: DevCluster) -> None:
    code, _, version = call(devcluster.url, "GET", "/version")
    assert code == 200 and (version["major"], version["minor"]) == ("1", "37")
    _, _, core = call(devcluster.url, "GET", "/api/v1")
    names = {r["name"] for r in core["resources"]}
    assert {"namespaces", "pods", "pods/status", "pods/log", "events", "nodes"} <= names
    _, _, groups = call(devcluster.url, "GET", "/apis")
    assert {"coordination.k8s.io", "apiextensions.k8s.io", "events.k8s.io"} <= {
        g["name"] for g in groups["groups"]
    }
    code, _, _ = call(devcluster.url, "GET", "/apis/nope.example/v1")
    assert code == 404


def test_aggregated_discovery(devcluster: DevCluster) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    code, headers, doc = call(devcluster.url, "GET", "/apis", accept=accept)
    assert code == 200 and headers["Content-Type"] == accept
    assert doc["kind"] == "APIGroupDiscoveryList"
    groups = {g["metadata"]["name"] for g in doc["items"]}
    assert "apiextensions.k8s.io" in groups and "" not in groups


def test_status_errors_are_metav1_status(devcluster: DevCluster, devcluster_ns: str) -> None:
    code, _, body = call(devcluster.url, "GET", CM.format(ns=devcluster_ns) + "/missing")
    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "missing" not found',
        "reason": "NotFound",
        "code": 404,
        # kube-apiserver leaves the core group ("") out
        "details": {"name": "missing", "kind": "configmaps"},
    }


def test_stale_put_is_409(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = CM.format(ns=devcluster_ns)
    code, _, created = call(devcluster.url, "POST", url, cm("a"))
    assert code == 201
    created["data"] = {"k": "2"}
    code, _, _ = call(devcluster.url, "PUT", f"{url}/a", created)
    assert code == 200
    code, _, body = call(devcluster.url, "PUT", f"{url}/a", created)
    assert (code, body["reason"]) == (409, "Conflict")


def test_patch_content_types(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = CM.format(ns=devcluster_ns)
    call(devcluster.url, "POST", url, cm("a"))
    code, _, obj = call(
        devcluster.url,
        "PATCH",
        f"{url}/a",
        {"data": {"x": "1"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200 and obj["data"] == {"k": "v", "x": "1"}
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"}]
    code, _, body = call(
        devcluster.url, "PATCH", f"{url}/a", ops, content_type="application/json-patch+json"
    )
    assert (code, body["reason"]) == (422, "Invalid")
    code, _, obj = call(
        devcluster.url,
        "PATCH",
        f"{url}/a",
        {"data": {"x": None}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 200 and obj["data"] == {"k": "v"}


def test_server_side_apply_creates_then_merges(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = CM.format(ns=devcluster_ns) + "/ssa?fieldManager=t"
    code, _, obj = call(
        devcluster.url, "PATCH", url, cm("ssa"), content_type="application/apply-patch+yaml"
    )
    assert code == 201 and obj["data"] == {"k": "v"}
    code, _, obj = call(
        devcluster.url,
        "PATCH",
        url,
        {**cm("ssa"), "data": {"j": "w"}},
        content_type="application/apply-patch+yaml",
    )
    assert code == 200 and obj["data"] == {"k": "v", "j": "w"}


def test_list_selectors_and_pagination(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = CM.format(ns=devcluster_ns)
    for i in range(5):
        call(devcluster.url, "POST", url, cm(f"c{i}", labels={"n": str(i % 2)}))
    _, _, page = call(devcluster.url, "GET", f"{url}?labelSelector=n%3D0")
    assert [i["metadata"]["name"] for i in page["items"]] == ["c0", "c2", "c4"]
    _, _, page = call(devcluster.url, "GET", f"{url}?fieldSelector=metadata.name%3Dc3")
    assert [i["metadata"]["name"] for i in page["items"]] == ["c3"]
    seen, cont = [], ""
    while True:
        _, _, page = call(devcluster.url, "GET", f"{url}?limit=2&continue={cont}")
        seen += [i["metadata"]["name"] for i in page["items"]]
        cont = page["metadata"].get("continue")
        if not cont:
            break
    assert [n for n in seen if n.startswith("c")] == [f"c{i}" for i in range(5)]


def test_status_subresource_over_http(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = f"/api/v1/namespaces/{devcluster_ns}/pods"
    pod = {
        "metadata": {"name": "p"},
        "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "busybox"}]},
    }
    code, _, created = call(devcluster.url, "POST", url, pod)
    assert code == 201 and created["status"]["phase"] == "Pending"
    code, _, obj = call(
        devcluster.url,
        "PATCH",
        f"{url}/p/status",
        {"status": {"message": "hi"}, "metadata": {"labels": {"x": "y"}}, "spec": {"priority": 9}},
        content_type="application/merge-patch+json",
    )
    assert code == 200 and obj["status"]["message"] == "hi"
    # kube-apiserver's pod status strategy keeps the spec only: the labels are written
    # (a custom resource's status write keeps its metadata whole)
    assert obj["metadata"]["labels"] == {"x": "y"}
    assert obj["spec"]["priority"] == 0


def test_watch_resume(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = CM.format(ns=devcluster_ns)
    _, _, a = call(devcluster.url, "POST", url, cm("a"))
    call(devcluster.url, "POST", url, cm("b"))
    rv = a["metadata"]["resourceVersion"]
    events = stream(devcluster.url, f"{url}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


def test_watch_410_when_history_is_compacted() -> None:
    with DevCluster(kubelet=False, history_size=2) as dc:
        url = CM.format(ns="default")
        _, _, first = call(dc.url, "POST", url, cm("a"))
        for i in range(4):
            call(
                dc.url,
                "PATCH",
                f"{url}/a",
                {"data": {"i": str(i)}},
                content_type="application/merge-patch+json",
            )
        rv = first["metadata"]["resourceVersion"]
        events = list(stream(dc.url, f"{url}?watch=1&resourceVersion={rv}&timeoutSeconds=1"))
        assert len(events) == 1
        assert events[0]["type"] == "ERROR"
        assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")


def test_a_list_snapshot_older_than_the_history_is_410() -> None:
    """An Exact list, or the next page of a paginated one, needs the history back to its
    version (the snapshot is rebuilt from it): older is 410 Expired in etcd3's words."""
    with DevCluster(kubelet=False, history_size=2) as dc:
        url = CM.format(ns="default")
        call(dc.url, "POST", url, cm("a"))
        _, _, first = call(dc.url, "POST", url, cm("b"))
        _, _, page = call(dc.url, "GET", f"{url}?limit=1")
        assert page["metadata"]["continue"]
        rv = first["metadata"]["resourceVersion"]
        code, _, body = call(
            dc.url, "GET", f"{url}?resourceVersion={rv}&resourceVersionMatch=Exact"
        )
        assert code == 200
        for i in range(3):
            call(dc.url, "POST", url, cm(f"c{i}"))
        code, _, body = call(
            dc.url, "GET", f"{url}?resourceVersion={rv}&resourceVersionMatch=Exact"
        )
        assert (code, body["reason"]) == (410, "Expired")
        assert body["message"] == "The resourceVersion for the provided list is too old."
        code, _, body = call(
            dc.url, "GET", f"{url}?limit=1&continue={page['metadata']['continue']}"
        )
        assert (code, body["reason"]) == (410, "Expired")
        assert body["message"].startswith("The provided continue parameter is too old")


def test_watch_bookmarks_and_selectors(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = CM.format(ns=devcluster_ns)
    got: list[dict[str, Any]] = []
    path = (
        f"{url}?watch=true&allowWatchBookmarks=true&labelSelector=keep&timeoutSeconds=2"
        f"&resourceVersion={devcluster.store.resource_version()}"
    )

    def consume() -> None:
        got.extend(stream(devcluster.url, path))

    reader = threading.Thread(target=consume)
    reader.start()
    wait_for(lambda: devcluster.requests.count(verb="watch", namespace=devcluster_ns))
    call(devcluster.url, "POST", url, cm("skip"))
    call(devcluster.url, "POST", url, cm("kept", labels={"keep": "1"}))
    reader.join(5)
    kinds = [(e["type"], e["object"]["metadata"].get("name")) for e in got]
    assert ("ADDED", "kept") in kinds and ("ADDED", "skip") not in kinds
    assert ("BOOKMARK", None) in kinds, "bookmarks every second in the test cluster"


def test_table_output(devcluster: DevCluster, devcluster_ns: str) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    _, _, table = call(devcluster.url, "GET", f"/api/v1/namespaces/{devcluster_ns}", accept=accept)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert table["rows"][0]["cells"][:2] == [devcluster_ns, "Active"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_request_accounting(devcluster: DevCluster, devcluster_ns: str) -> None:
    url = CM.format(ns=devcluster_ns)
    call(devcluster.url, "POST", url, cm("a"), agent="acct/1")
    call(devcluster.url, "GET", f"{url}/a", agent="acct/1")
    call(devcluster.url, "GET", url, agent="acct/1")
    call(devcluster.url, "DELETE", f"{url}/a", agent="acct/1")
    call(devcluster.url, "DELETE", url, agent="acct/1")
    records = devcluster.requests.filter(user_agent="acct/")
    assert [(r.verb, r.code) for r in records] == [
        ("create", 201),
        ("get", 200),
        ("list", 200),
        ("delete", 200),
        ("deletecollection", 200),
    ]
    assert {(r.resource, r.namespace) for r in records} == {("configmaps", devcluster_ns)}
    assert all(r.duration >= 0 and r.started > 0 for r in records)


def test_faults_are_scoped_and_seeded() -> None:
    with DevCluster(kubelet=False, seed=7) as dc:
        dc.faults.error_rate = 1.0
        dc.faults.error_codes = (503,)
        dc.faults.user_agent_prefix = "victim"
        assert call(dc.url, "GET", "/api/v1/namespaces", agent="victim/1")[0] == 503
        assert call(dc.url, "GET", "/api/v1/namespaces", agent="bystander")[0] == 200
        assert call(dc.url, "GET", "/api/v1", agent="victim/1")[0] == 200, "discovery spared"
        dc.faults.user_agent_prefix = None
        dc.faults.spare_user_agents = ("harness",)
        assert call(dc.url, "GET", "/api/v1/namespaces", agent="harness/2")[0] == 200
        assert call(dc.url, "GET", "/api/v1/namespaces", agent="other")[0] == 503
        dc.faults.clear()
        dc.faults.throttle_rate = 1.0
        dc.faults.retry_after = 3
        code, headers, body = call(dc.url, "GET", "/api/v1/namespaces")
        assert (code, headers["Retry-After"], body["reason"]) == (429, "3", "TooManyRequests")
        dc.faults.clear()
        dc.faults.error_rate = 0.5
        codes = [call(dc.url, "GET", "/api/v1/namespaces")[0] for _ in range(20)]
        dc.faults.reseed(7)
        again = [call(dc.url, "GET", "/api/v1/namespaces")[0] for _ in range(20)]
        assert codes == again and 500 in codes and 200 in codes


def test_fault_latency_and_dropped_watches() -> None:
    with DevCluster(kubelet=False) as dc:
        dc.faults.latency = 0.2
        started = time.monotonic()
        call(dc.url, "GET", "/api/v1/namespaces")
        assert time.monotonic() - started >= 0.2
        dc.faults.clear()
        dc.faults.drop_watches_every = 0.3
        started = time.monotonic()
        list(stream(dc.url, "/api/v1/namespaces?watch=1&timeoutSeconds=30"))
        assert time.monotonic() - started < 5
        dc.faults.clear()
        dc.faults.force_410_on_resume = True
        rv = dc.store.resource_version()
        events = list(stream(dc.url, f"/api/v1/namespaces?watch=1&resourceVersion={rv}"))
        assert events[0]["object"]["code"] == 410


def test_pod_logs_with_a_log_store() -> None:
    logs = LogStore()
    with DevCluster(kubelet=False) as dc:
        dc.kubelet = SimpleNamespace(logs=logs)
        url = "/api/v1/namespaces/default/pods"
        pod = {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]},
        }
        call(dc.url, "POST", url, pod)
        code, _, body = call(dc.url, "GET", f"{url}/p/log")
        assert code == 400 and "choose one of: [a b]" in body["message"]
        code, _, body = call(dc.url, "GET", f"{url}/p/log?container=a")
        assert code == 400 and "is waiting to start" in body["message"]
        logs.open("default", "p", "a")
        logs.append("default", "p", "a", b"one\ntwo\nthree\n")
        assert call(dc.url, "GET", f"{url}/p/log?container=a")[2] == b"one\ntwo\nthree\n"
        assert call(dc.url, "GET", f"{url}/p/log?container=a&tailLines=1")[2] == b"three\n"
        assert call(dc.url, "GET", f"{url}/p/log?container=a&limitBytes=3")[2] == b"one"
        stamped = call(dc.url, "GET", f"{url}/p/log?container=a&timestamps=true")[2]
        assert stamped.split(b" ", 1)[1].startswith(b"one") and b"Z " in stamped
        since = call(dc.url, "GET", f"{url}/p/log?container=a&sinceTime=2000-01-01T00:00:00Z")
        assert since[2] == b"one\ntwo\nthree\n"
        assert call(dc.url, "GET", f"{url}/p/log?container=a&sinceTime=yesterday")[0] == 400
        code, _, body = call(dc.url, "GET", f"{url}/p/log?container=zz")
        assert code == 400 and "container zz is not valid" in body["message"]

        def finish() -> None:
            wait_for(
                lambda: (
                    dc.requests.count(subresource="log", code=200) >= 4
                    and any("follow" in r.query for r in dc.requests.records)
                )
            )
            dc.call(_append_and_close(logs))

        closer = threading.Thread(target=finish)
        closer.start()
        code, _, body = call(dc.url, "GET", f"{url}/p/log?container=a&follow=true")
        closer.join(5)
        assert code == 200 and body == b"one\ntwo\nthree\nfour\n"


async def _append_and_close(logs: LogStore) -> None:
    logs.append("default", "p", "a", b"four\n")
    logs.close("default", "p", "a")


def test_binding_and_log_only_take_their_own_verbs(
    devcluster: DevCluster, devcluster_ns: str
) -> None:
    url = f"/api/v1/namespaces/{devcluster_ns}/pods"
    pod = {
        "metadata": {"name": "p"},
        "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "busybox"}]},
    }
    call(devcluster.url, "POST", url, pod)
    code, _, _ = call(
        devcluster.url,
        "PATCH",
        f"{url}/p/binding",
        {"target": {"name": "x"}},
        content_type="application/merge-patch+json",
    )
    assert code == 405
    code, _, _ = call(devcluster.url, "POST", f"{url}/p/binding", {"target": {"name": "n1"}})
    assert code == 201
    _, _, bound = call(devcluster.url, "GET", f"{url}/p")
    assert bound["spec"]["nodeName"] == "n1"


def test_bad_watch_selector_is_a_plain_400(devcluster: DevCluster) -> None:
    code, _, body = call(devcluster.url, "GET", "/api/v1/pods?watch=1&fieldSelector=spec.image%3Dx")
    assert (code, body["reason"]) == (400, "BadRequest")


def test_resumed_watches_lose_nothing_when_dropped() -> None:
    """A client that resumes from its last resourceVersion sees every change."""
    with DevCluster(kubelet=False) as dc:
        dc.faults.drop_watches_every = 0.2
        url = CM.format(ns="default")
        seen: set[str] = set()
        done = threading.Event()

        def watcher() -> None:
            rv = dc.store.resource_version()
            while not done.is_set() or len(seen) < 30:
                path = f"{url}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
                for event in stream(dc.url, path):
                    rv = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        seen.add(event["object"]["metadata"]["name"])

        reader = threading.Thread(target=watcher, daemon=True)
        reader.start()
        for i in range(30):
            call(dc.url, "POST", url, cm(f"c{i}"))
            call(dc.url, "DELETE", f"{url}/c{i}")
            time.sleep(0.02)
        done.set()
        reader.join(10)
        assert seen == {f"c{i}" for i in range(30)}
        assert dc.requests.count(verb="watch") >= 3, "the watch was really dropped"


def test_metadata_only_lists(devcluster: DevCluster, devcluster_ns: str) -> None:
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    call(devcluster.url, "POST", CM.format(ns=devcluster_ns), cm("a"))
    _, _, page = call(devcluster.url, "GET", CM.format(ns=devcluster_ns), accept=accept)
    assert page["kind"] == "PartialObjectMetadataList"
    [item] = page["items"]
    assert item["kind"] == "PartialObjectMetadata" and "data" not in item
    assert item["metadata"]["name"] == "a"
