"""testcluster's HTTP client over the session's cluster, its kubeconfig reading, and the
audit log as request accounting."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from testcluster import ApiError, Cluster
from testcluster.audit import AuditRequests, record
from testcluster.kubeconfig import load

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "devcluster" / "data"
SCENARIO = "devcluster.taskrun.dev/scenario"


def pod(name: str, scenario: dict | None = None) -> dict:
    meta: dict = {"name": name}
    if scenario is not None:
        meta["annotations"] = {SCENARIO: json.dumps(scenario)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}], "restartPolicy": "Never"},
    }


def test_create_get_list_patch_replace_delete(kube: Cluster, kube_ns: str) -> None:
    created = kube.create("configmaps", kube_ns, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    assert created["metadata"]["uid"]
    kube.create("cm", kube_ns, {"metadata": {"name": "b", "labels": {"pick": "yes"}}})
    # a real cluster's root-CA publisher adds kube-root-ca.crt to every namespace
    names = [c["metadata"]["name"] for c in kube.list("configmaps", kube_ns)]
    assert [n for n in names if n != "kube-root-ca.crt"] == ["a", "b"]
    assert [
        c["metadata"]["name"] for c in kube.list("ConfigMap", kube_ns, label_selector="pick=yes")
    ] == ["b"]
    kube.patch("configmaps", kube_ns, "a", {"data": {"k": "2"}})
    current = kube.get("configmaps", kube_ns, "a")
    assert current["data"] == {"k": "2"}
    current["data"]["k"] = "3"
    kube.replace("configmaps", kube_ns, "a", current)
    with pytest.raises(ApiError) as stale:
        kube.replace("configmaps", kube_ns, "a", current)  # the old resourceVersion
    assert stale.value.code == 409
    kube.delete("configmaps", kube_ns, "a")
    assert kube.get_or_none("configmaps", kube_ns, "a") is None
    assert kube.delete("configmaps", kube_ns, "a", missing_ok=True) is None
    with pytest.raises(ApiError, match="no resource named 'nothings'"):
        kube.list("nothings", kube_ns)


OPTIONS = {"kind": "DeleteOptions", "apiVersion": "v1"}


@pytest.mark.parametrize(
    ("query", "body", "deleted"),
    [
        ({"dryRun": "All"}, None, False),
        (None, {**OPTIONS, "dryRun": ["All"]}, False),
        ({"dryRun": "All"}, {**OPTIONS, "dryRun": ["All"]}, False),
        # A body is read alone: the query's dryRun does not count beside it.
        ({"dryRun": "All"}, OPTIONS, True),
        ({"dryRun": "All"}, {**OPTIONS, "gracePeriodSeconds": 0}, True),
    ],
    ids=["query", "body", "both", "query-beside-a-body", "query-beside-grace"],
)
def test_delete_options_come_from_the_body_or_else_the_query(
    kube: Cluster, kube_ns: str, query: dict | None, body: dict | None, deleted: bool
) -> None:
    """kube-apiserver decodes DeleteOptions from the body when there is one, from the query
    only when there is none (a client sending both loses its ?dryRun=All); devcluster too.
    A dry run answers with what the delete would mark, and stores nothing."""
    created = kube.create("pods", kube_ns, pod("target", {"runSeconds": 600}))
    path = kube.resource("pods").path(kube_ns, "target")
    answer = kube.request("DELETE", path, query=query, body=body)
    assert answer["metadata"]["uid"] == created["metadata"]["uid"]
    assert answer["metadata"].get("deletionTimestamp")
    left = kube.get_or_none("pods", kube_ns, "target")
    if deleted:
        # gone, or going (a pod bound to a node waits for its kubelet)
        assert left is None or left["metadata"].get("deletionTimestamp")
    else:
        assert left is not None and left["metadata"]["uid"] == created["metadata"]["uid"]
        assert left["metadata"].get("deletionTimestamp") is None
        kube.delete("pods", kube_ns, "target")


def test_a_crd_applied_from_a_file_is_served_and_applied_again(kube: Cluster, kube_ns: str) -> None:
    kube.apply_file(DATA / "widgets-crd.yaml")
    widget = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": kube_ns},
        "spec": {"size": 1, "color": "red"},
    }
    kube.apply(widget)
    kube.apply({**widget, "spec": {"size": 2, "color": "red"}})  # exists: replaced
    assert kube.get("widgets", kube_ns, "w")["spec"] == {"size": 2, "color": "red"}


def test_watch_sees_a_change_after_the_listed_version(kube: Cluster, kube_ns: str) -> None:
    kube.create("configmaps", kube_ns, {"metadata": {"name": "w"}})
    version = kube.request("GET", kube.resource("configmaps").path(kube_ns))["metadata"][
        "resourceVersion"
    ]
    seen: list[dict] = []

    def watch() -> None:
        for event in kube.watch("configmaps", kube_ns, resource_version=version, timeout=10):
            if event["type"] == "MODIFIED":
                seen.append(event["object"])
                return

    thread = threading.Thread(target=watch)
    thread.start()
    kube.patch("configmaps", kube_ns, "w", {"data": {"x": "y"}})
    thread.join(15)
    assert [o["data"] for o in seen] == [{"x": "y"}]


def test_logs_of_a_pod_that_played_its_scenario(kube: Cluster, kube_ns: str) -> None:
    kube.require_scenarios()
    kube.create("pods", kube_ns, pod("p", {"exitCode": 0, "logs": "one\ntwo\nthree\n"}))
    from devcluster.pytest_plugin import wait_for

    wait_for(
        lambda: (kube.get("pods", kube_ns, "p").get("status") or {}).get("phase") == "Succeeded",
        30,
        what="the pod to succeed",
    )
    assert kube.logs(kube_ns, "p", "c") == "one\ntwo\nthree\n"
    assert kube.logs(kube_ns, "p", "c", tailLines=1) == "three\n"


@pytest.mark.parametrize(
    ("user", "header"),
    [
        ({"token": "abc"}, "Bearer abc"),
        ({"tokenFile": "token"}, "Bearer from-file"),
        ({"username": "u", "password": "p"}, "Basic " + base64.b64encode(b"u:p").decode()),
        ({}, None),
    ],
    ids=["token", "token-file", "basic", "none"],
)
def test_kubeconfig_users(tmp_path: Path, user: dict, header: str | None) -> None:
    (tmp_path / "token").write_text("from-file\n")
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443/"}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [
                    {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}
                ],
                "current-context": "x",
            }
        )
    )
    endpoint = load(path)
    assert endpoint.server == "https://127.0.0.1:6443"
    assert endpoint.namespace == "ns"
    assert endpoint.ssl_context is not None
    assert endpoint.headers.get("Authorization") == header


def test_kubeconfig_client_certificate_data_and_ca(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-keyout", str(key), "-out", str(cert),
         "-subj", "/CN=admin", "-days", "1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": "https://h:1",
                            "certificate-authority-data": b64(cert),
                        },
                    }
                ],
                "users": [
                    {
                        "name": "u",
                        "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
                    }
                ],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    endpoint = load(path)
    assert endpoint.ssl_context is not None
    # the CA data is the one trusted root (a default context would hold the system's too)
    subjects = [c["subject"] for c in endpoint.ssl_context.get_ca_certs()]
    assert subjects == [((("commonName", "admin"),),)]
    assert "Authorization" not in endpoint.headers


def test_an_exec_plugin_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://h:1"}}],
                "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}],
                "contexts": [{"name": "eks", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "eks",
            }
        )
    )
    with pytest.raises(ValueError, match="'eks' needs an exec plugin"):
        load(path)


EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/ns/pods?fieldManager=x",
    "verb": "create",
    "user": {"username": "system:serviceaccount:taskrun-system:taskrun-controller"},
    "userAgent": "taskrun-controller/0.1",
    "objectRef": {"resource": "pods", "namespace": "ns", "name": "p-1", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 201},
    "annotations": {"authorization.k8s.io/decision": "allow"},
    "requestReceivedTimestamp": "2026-12-04T23:40:00.100000Z",
    "stageTimestamp": "2026-12-04T23:40:00.350000Z",
}


def test_an_audit_event_is_the_record_devcluster_would_write() -> None:
    rec = record(EVENT)
    assert (rec.verb, rec.resource, rec.namespace, rec.name, rec.code) == (
        "create", "pods", "ns", "p-1", 201,
    )  # fmt: skip
    assert (rec.group, rec.version, rec.subresource) == ("", "v1", "")
    assert (rec.path, rec.query) == ("/api/v1/namespaces/ns/pods", "fieldManager=x")
    assert rec.user_agent.startswith("taskrun-controller")
    assert rec.user == "system:serviceaccount:taskrun-system:taskrun-controller"
    assert rec.decision == "allow"
    assert rec.duration == pytest.approx(0.25)


def test_the_audit_log_is_read_as_it_grows(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    requests = AuditRequests(log)
    assert requests.records == []  # not written yet
    watch = {**EVENT, "auditID": "2", "verb": "watch", "stage": "ResponseStarted"}
    watch["responseStatus"] = {"code": 200}
    with log.open("w") as fh:
        fh.write(json.dumps(EVENT) + "\n" + json.dumps(watch) + "\n")
        fh.write(json.dumps({**watch, "stage": "ResponseComplete"})[:40])  # half a line
        fh.flush()
        assert [r.verb for r in requests.records] == ["create", "watch"]
        fh.write(json.dumps({**watch, "stage": "ResponseComplete"})[40:] + "\n")
    # the watch's second stage is the same request: still one record
    assert requests.count(verb="watch") == 1
    assert requests.count(user_agent="taskrun-controller", verb=("create", "patch"), code=201) == 1
    requests.clear()
    assert len(requests) == 0


def test_a_barrier_waits_for_the_log_to_catch_up(tmp_path: Path) -> None:
    """What the test saw answered is in the log once the barrier's own request is."""
    log = tmp_path / "audit.log"
    log.write_text("")

    def barrier(token: str) -> None:
        # the server writes the late event of an earlier request, then the barrier's
        def write() -> None:
            barrier_event = {**EVENT, "auditID": token, "verb": "get", "objectRef": {"name": token}}
            with log.open("a") as fh:
                fh.write(json.dumps({**EVENT, "auditID": "late"}) + "\n")
                fh.write(json.dumps(barrier_event) + "\n")

        threading.Timer(0.05, write).start()

    requests = AuditRequests(log, barrier=barrier)
    assert requests.count(verb="create") == 1
    assert requests.count(verb="get") == 0  # the barrier is no record


def test_devcluster_only_tests_skip_elsewhere_with_their_reason(
    kube: Cluster, tmp_path: Path
) -> None:
    """--cluster=kubeconfig against this session's cluster, in a pytest of its own."""
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n"
        "@pytest.mark.devcluster_only('uses the fault plan')\n"
        "def test_marked(): pass\n"
        "def test_counts(kube):\n"
        "    assert kube.flavor == 'kubeconfig'\n"
        "    kube.requests\n"
    )
    env = {"KUBECONFIG": str(kube.kubeconfig_path), "PYTHONPATH": str(ROOT), "PATH": "/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "testcluster.pytest_plugin",
         "-p", "no:cacheprovider", "-rs", "--cluster=kubeconfig", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )  # fmt: skip
    assert "devcluster only: uses the fault plan" in proc.stdout, proc.stdout
    assert "has no request accounting" in proc.stdout, proc.stdout
    assert "2 skipped" in proc.stdout, proc.stdout
