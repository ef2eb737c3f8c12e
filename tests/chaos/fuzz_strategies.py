"""Hypothesis strategies for TaskRuns: valid, almost valid, denied by policy, and hostile.

Each example carries what a correct system does with it: `fields` are the names a refusal
(or an InvalidSpec / PolicyDenied message) must mention, one of them at least. The TaskRun's
own path comes first, then the pod's, because a refusal that only the cluster can make
(a 422 on pod creation) speaks of pod fields.

test_fuzz.py (the controller) and test_fuzz_admission.py (the API servers) share from here
the hypothesis settings, every table entry as pytest parameters, and the judgement of the
API server's answer to a create.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCENARIO_ANNOTATION = "devcluster.taskrun.dev/scenario"
# Exit at once: the fuzz is about admission and the controller, not about run time.
FAST_SCENARIO = json.dumps({"exitCode": 0, "runSeconds": 0})
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
INT32_MAX = 2**31 - 1
# Over the apiserver's 256 KiB cap on a pod's annotations, under its 1.5 MiB object cap.
HUGE = 300 * 1024

# Both fuzz suites' settings: no deadline (an example is a whole run, or the answers of two
# API servers) and room for the large examples hostile strings make.
FUZZ = settings(
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@dataclass(frozen=True)
class Sample:
    category: str  # valid | invalid | policy | hostile
    name: str
    spec: Any
    fields: tuple[str, ...] = ()
    # invalid: also fine when the TaskRun is admitted and ends Failed/InvalidSpec, because
    # only the models in the controller or the pod's own validation can tell.
    cluster_only: bool = False
    note: str = ""
    # Failure reasons that are right for this input besides InvalidSpec and PolicyDenied.
    also_ok_reasons: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        body = json.dumps({"name": self.name, "spec": self.spec}, ensure_ascii=True)
        if len(body) > 600:
            body = body[:600] + f"... ({len(body)} chars)"
        return f"{self.category} [{self.note}] {body}"

    def named_in(self, message: str) -> bool:
        """Whether a refusal's (or a status') message names one of the sample's fields."""
        return any(name in message for name in self.fields)


# --- building blocks -------------------------------------------------------------------------

_label = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
dns_labels = st.from_regex(rf"\A{_label}\Z")
# TaskRun names are DNS subdomains up to 253 characters: the pod name must still fit 63.
taskrun_names = st.one_of(
    st.from_regex(r"\A[a-z]([-a-z0-9]{0,30}[a-z0-9])?\Z"),
    st.lists(dns_labels, min_size=1, max_size=5).map(".".join).filter(lambda n: len(n) <= 253),
    st.integers(64, 253).map(lambda n: ("a" * (n - 1)) + "z"),
)
label_keys = st.from_regex(r"\A(example\.com/)?[a-z][a-z0-9]{0,10}\Z")
label_values = st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?\Z")
env_names = st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,15}\Z")
images = st.sampled_from(
    [
        "busybox:1.36",
        "alpine",
        "registry.example.com:5000/team/app:v1.2.3",
        "ghcr.io/org/tool@sha256:" + "0123456789abcdef" * 4,
    ]
)

HOSTILE_STRINGS = [
    "A" * HUGE,
    "ünïcødé",
    "日本語のテキスト",
    "🚀🔥💥",
    "\u202eevil\u202c",  # right-to-left override
    "zero\u200bwidth",
    "e\u0301\u0301\u0301",
    "\U0010ffff",
    "nul\x00byte",
    "line1\nline2",
    "x\r\nX-Injected: 1",
    "\t",
    "$(reboot)",
    "`id`",
    "; rm -rf / #",
    "' OR 1=1 --",
    "{{7*7}}",
    "${jndi:ldap://127.0.0.1/a}",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "%s%s%n",
    '"}], "spec": {"hostNetwork": true}',
    "'; kubectl delete ns default; '",
    "self.spec.image == oldSelf",
    "*",
    "-",
    ".",
    "..",
    " leading space",
    "",
]
hostile_strings = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(min_size=1, max_size=64),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=16).map(lambda s: s * 50),
)
any_text = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_STRINGS[1:]))


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec the CRD, the models, the policy and the pod validation all accept."""
    spec: dict[str, Any] = {"image": draw(images)}
    maybe = st.booleans()
    if draw(maybe):
        spec["cmds"] = draw(st.lists(any_text, max_size=4))
    if draw(maybe):
        spec["arguments"] = draw(st.lists(any_text, max_size=4))
    if draw(maybe):
        names = draw(st.lists(env_names, max_size=4, unique=True))
        spec["envVars"] = [{"name": n, "value": draw(any_text)} for n in names]
    if draw(maybe):
        spec["labels"] = draw(st.dictionaries(label_keys, label_values, max_size=3))
    annotations = draw(st.dictionaries(label_keys, any_text, max_size=3))
    spec["annotations"] = {**annotations, SCENARIO_ANNOTATION: FAST_SCENARIO}
    if draw(maybe):
        # From 5: a 1 s startup timeout measures the CI machine's load, not the controller.
        spec["startupTimeoutSeconds"] = draw(st.integers(5, MAX_TIMEOUT_SECONDS))
    if draw(maybe):
        spec["scheduleTimeoutSeconds"] = draw(st.integers(5, MAX_TIMEOUT_SECONDS))
    if draw(maybe):
        spec["retries"] = draw(st.integers(0, 100))
    if draw(maybe):
        spec["onFinishAction"] = draw(
            st.sampled_from(["delete_pod", "delete_succeeded_pod", "keep_pod"])
        )
    if draw(maybe):
        spec["skipOnExitCode"] = draw(st.lists(st.integers(0, 255), max_size=3))
    if draw(maybe):
        spec["doXcomPush"] = draw(st.booleans())
    if draw(maybe):
        spec["getLogs"] = draw(st.booleans())
    if draw(maybe):
        # The pod's own limit (int32), not the model's int64: larger is a cluster refusal.
        spec["activeDeadlineSeconds"] = draw(st.integers(60, INT32_MAX))
    if draw(maybe):
        spec["terminationGracePeriod"] = draw(st.integers(0, 3600))
    if draw(maybe):
        spec["imagePullPolicy"] = draw(st.sampled_from(["Always", "IfNotPresent", "Never"]))
    if draw(maybe):
        spec["terminationMessagePolicy"] = draw(st.sampled_from(["File", "FallbackToLogsOnError"]))
    if draw(maybe):
        spec["baseContainerName"] = draw(dns_labels.filter(lambda n: n != "airflow-xcom-sidecar"))
    return spec


@st.composite
def valid_samples(draw: st.DrawFn) -> Sample:
    return Sample("valid", draw(taskrun_names), draw(valid_specs()), note="valid")


# --- almost valid: one field broken -----------------------------------------------------------

# (spec key, bad values, names the refusal must mention, only the cluster/controller can tell)
SPEC_MUTATIONS: list[tuple[str, list[Any], tuple[str, ...], bool]] = [
    ("retries", [-1, 101, 2**63, "3", 1.5, True], ("retries",), False),
    (
        "startupTimeoutSeconds",
        [0, -1, MAX_TIMEOUT_SECONDS + 1, "120", [], {}],
        ("startupTimeoutSeconds",),
        False,
    ),
    ("scheduleTimeoutSeconds", [0, "x"], ("scheduleTimeoutSeconds",), False),
    ("onFinishAction", ["delete", "DELETE_POD", "", 1, ["delete_pod"]], ("onFinishAction",), False),
    ("imagePullPolicy", ["always", "Sometimes", 0], ("imagePullPolicy",), False),
    ("image", ["", 42, ["busybox"], {"name": "busybox"}], ("image",), False),
    ("skipOnExitCode", [[256], [-1], "0", [0.5], ["1"]], ("skipOnExitCode",), False),
    (
        "labels",
        [{"k": "has space"}, {"k": "x" * 64}, {"k": "ü"}, {"k": 1}, "k=v"],
        ("labels",),
        False,
    ),
    (
        "envVars",
        [[{"value": "x"}], [{"name": 1}], "PATH=/bin", [{"name": "A", "value": 1}]],
        ("envVars",),
        False,
    ),
    ("cmds", ["echo hi", [1], [["a"]], {"a": 1}], ("cmds",), False),
    ("arguments", ["-v", [True], [{"a": 1}]], ("arguments",), False),
    ("hostNetwork", ["yes", 1], ("hostNetwork",), False),
    ("activeDeadlineSeconds", [0, -1, "60"], ("activeDeadlineSeconds",), False),
    ("terminationGracePeriod", [-1, "30"], ("terminationGracePeriod",), False),
    ("terminationMessagePolicy", ["Fallback", "file"], ("terminationMessagePolicy",), False),
    ("baseContainerName", ["Base", "a_b", "x" * 64, ""], ("baseContainerName",), False),
    ("containerLogs", [["Bad Name"], "base"], ("containerLogs",), False),
    (
        "retryBackoff",
        [{"factor": 0.5}, {"factor": "2"}, {"initialSeconds": -1}],
        ("retryBackoff", "factor", "initialSeconds"),
        False,
    ),
    ("ttlSecondsAfterFinished", [-1, 2**31], ("ttlSecondsAfterFinished",), False),
    ("cancel", ["true", 0], ("cancel",), False),
    ("initContainers", [[{"image": "x"}]], ("initContainers",), False),
    (
        "secrets",
        [
            [{"deployType": "volume", "secret": "s"}],
            [{"deployType": "file", "secret": "s", "deployTarget": "/x"}],
        ],
        ("secrets", "deployTarget", "deployType"),
        False,
    ),
    # Only the controller's models or the pod's validation can tell these.
    (
        "retryBackoff",
        [{"initialSeconds": 100, "maxSeconds": 10}],
        ("retryBackoff", "maxSeconds"),
        True,
    ),
    ("labels", [{"bad key!": "v"}, {"a/b/c": "v"}, {"x" * 64: "v"}], ("labels",), True),
    ("volumeMounts", [[{"name": "missing", "mountPath": "/x"}]], ("volumeMounts",), True),
    (
        "initContainers",
        [[{"name": "base", "image": "x"}], [{"name": "airflow-xcom-sidecar", "image": "x"}]],
        ("initContainers",),
        True,
    ),
    (
        "podTemplate",
        [{"spec": {"containers": "nope"}}, {"spec": {"volumes": [{"name": 5}]}}],
        ("podTemplate", "containers", "volumes"),
        True,
    ),
]

# Inputs that this suite caught mishandled when it was written (2026-11-24), each with the
# bug it found; fixed the same day and run by test_fuzz.py as regressions.
LIST_MAP_BUG = (
    "the CRD declares spec.volumes and spec.initContainers x-kubernetes-list-type: map keyed"
    " by name, which an apiserver enforces at create (422 Duplicate value); devcluster/schema.py"
    " does not, so the TaskRun is admitted (the controller then ends it InvalidSpec)"
)
FIXED_BUGS: list[tuple[Sample, str]] = [
    (
        Sample(
            "invalid",
            "deadline-over-int32",
            {"image": "busybox", "activeDeadlineSeconds": INT32_MAX + 1},
            ("activeDeadlineSeconds",),
            cluster_only=True,
            note="activeDeadlineSeconds=2**31",
        ),
        "a pod's activeDeadlineSeconds must be 1..2147483647: the model (taskrun/api/spec.py,"
        " le=INT64_MAX) lets the CRD admit 2**31 and devcluster's pod validation"
        " (devcluster/builtin.py validate_pod) checks only the lower bound, so the pod runs",
    ),
    (
        Sample(
            "invalid",
            "duplicate-volumes",
            {"image": "busybox", "volumes": [{"name": "v", "emptyDir": {}}] * 2},
            ("volumes",),
            note="volumes with one name twice",
        ),
        LIST_MAP_BUG,
    ),
    (
        Sample(
            "invalid",
            "duplicate-init-containers",
            {"image": "busybox", "initContainers": [{"name": "a", "image": "x"}] * 2},
            ("initContainers",),
            note="initContainers with one name twice",
        ),
        LIST_MAP_BUG,
    ),
    (
        Sample(
            "invalid",
            "pod-annotations-over-256k",
            {"image": "busybox", "annotations": {"big": "x" * HUGE}},
            ("annotations",),
            cluster_only=True,
            note="spec.annotations of 300 KiB",
        ),
        "an apiserver refuses a pod whose annotations exceed 256 KiB (metadata.annotations:"
        " Too long: must have at most 262144 bytes); devcluster/builtin.py validate_pod does"
        " not, and neither the CRD nor the controller bounds spec.annotations, so it runs",
    ),
]


METADATA_NAMES = ["Upper", "a_b", "x" * 254, "ünï", "-lead", "trail-", "a..b", "has space"]


@st.composite
def invalid_samples(draw: st.DrawFn) -> Sample:
    name = draw(taskrun_names)
    spec = draw(valid_specs())
    kind = draw(st.sampled_from(["spec", "spec", "spec", "spec", "name", "whole-spec"]))
    if kind == "name":
        bad = draw(st.sampled_from(METADATA_NAMES))
        return Sample("invalid", bad, spec, ("metadata.name",), note=f"metadata.name={bad[:20]!r}")
    if kind == "whole-spec":
        bad_spec = draw(st.sampled_from(["string", 5, [], True]))
        return Sample("invalid", name, bad_spec, ("spec",), note=f"spec={bad_spec!r}")
    key, values, fields, cluster_only = draw(st.sampled_from(SPEC_MUTATIONS))
    value = draw(st.sampled_from(values))
    if key == "initContainers":
        # The taken-name values collide with the default base container name only.
        spec.pop("baseContainerName", None)
    spec[key] = value
    return Sample(
        "invalid",
        name,
        spec,
        fields,
        cluster_only=cluster_only,
        note=f"{key}={json.dumps(value)[:60]}",
    )


# --- denied by the default security policy ---------------------------------------------------

# A pod template needs its containers, as a PodSpec does.
BASE = {"name": "base", "image": "busybox"}
POLICY_MUTATIONS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"containerSecurityContext": {"privileged": True}}, ("privileged",)),
    (
        {"containerSecurityContext": {"allowPrivilegeEscalation": True}},
        ("allowPrivilegeEscalation",),
    ),
    (
        {"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
        ("capabilities", "SYS_ADMIN"),
    ),
    ({"hostNetwork": True}, ("hostNetwork",)),
    (
        {
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "volumeMounts": [{"name": "root", "mountPath": "/host"}],
        },
        ("hostPath",),
    ),
    ({"serviceAccountName": "cluster-admin"}, ("serviceAccountName",)),
    ({"podTemplate": {"spec": {"hostPID": True, "containers": [BASE]}}}, ("hostPID",)),
    ({"podTemplate": {"spec": {"hostIPC": True, "containers": [BASE]}}}, ("hostIPC",)),
    (
        {
            "initContainers": [
                {"name": "init", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
        ("privileged",),
    ),
]


@st.composite
def policy_samples(draw: st.DrawFn) -> Sample:
    spec = draw(valid_specs())
    change, fields = draw(st.sampled_from(POLICY_MUTATIONS))
    spec.update(change)
    return Sample("policy", draw(taskrun_names), spec, fields, note=json.dumps(change)[:80])


# --- hostile strings where users type strings --------------------------------------------------

# (where, names a refusal must mention: the TaskRun field, then the pod field)
HOSTILE_PLACES: dict[str, tuple[str, ...]] = {
    "metadata.name": ("metadata.name",),
    "metadata.labels": ("metadata.labels",),
    "labels.value": ("labels",),
    "labels.key": ("labels",),
    "annotations.value": ("annotations",),
    "envVars.name": ("envVars", "env"),
    "envVars.value": ("envVars", "env"),
    "cmds": ("cmds", "command"),
    "arguments": ("arguments", "args"),
    "image": ("image",),
    "baseContainerName": ("baseContainerName", "name"),
    "serviceAccountName": ("serviceAccountName",),
}


@st.composite
def hostile_samples(draw: st.DrawFn) -> Sample:
    name = draw(taskrun_names)
    spec = draw(valid_specs())
    place = draw(st.sampled_from(sorted(HOSTILE_PLACES)))
    bad = draw(hostile_strings)
    metadata: dict[str, Any] = {}
    if place == "metadata.name":
        name = bad
    elif place == "metadata.labels":
        metadata = {"labels": {"app": bad}}
    elif place == "labels.value":
        spec["labels"] = {"app": bad}
    elif place == "labels.key":
        spec["labels"] = {bad: "v"}
    elif place == "annotations.value":
        spec["annotations"] = {"note": bad, SCENARIO_ANNOTATION: FAST_SCENARIO}
    elif place == "envVars.name":
        spec["envVars"] = [{"name": bad, "value": "v"}]
    elif place == "envVars.value":
        spec["envVars"] = [{"name": "HOSTILE", "value": bad}]
    elif place in ("cmds", "arguments"):
        spec[place] = ["sh", bad]
    else:
        spec[place] = bad
    shown = bad if len(bad) < 40 else f"{bad[:20]!r}...({len(bad)} chars)"
    # A kubelet refuses an image reference it cannot parse: InvalidImageName, failed fast.
    # Airflow semantics retry any failure, so without this the run would wait out its
    # retries' backoff rather than end.
    reasons: tuple[str, ...] = ()
    if place == "image":
        reasons = ("ImagePullFailed",)
        spec.pop("retries", None)
    return Sample(
        "hostile",
        name,
        spec,
        HOSTILE_PLACES[place],
        note=f"{place}={shown}",
        also_ok_reasons=reasons,
        metadata=metadata,
    )


# --- every table entry once, for a deterministic pass in CI --------------------------------


def base_spec() -> dict[str, Any]:
    """The smallest valid spec: one mutation on it tests that mutation alone."""
    return {"image": "busybox:1.36", "annotations": {SCENARIO_ANNOTATION: FAST_SCENARIO}}


def every_mutation() -> list[Sample]:
    """Each bad value of SPEC_MUTATIONS and each POLICY_MUTATIONS entry, once, on base_spec."""
    samples = []
    for key, values, fields, cluster_only in SPEC_MUTATIONS:
        for i, value in enumerate(values):
            spec = {**base_spec(), key: value}
            name = f"{key.lower()}-{i}"
            note = f"{key}={json.dumps(value)[:60]}"
            samples.append(Sample("invalid", name, spec, fields, cluster_only, note))
    for i, (change, fields) in enumerate(POLICY_MUTATIONS):
        samples.append(
            Sample("policy", f"policy-{i}", {**base_spec(), **change}, fields, note=str(change))
        )
    for i, bad in enumerate(METADATA_NAMES):
        samples.append(Sample("invalid", bad, base_spec(), ("metadata.name",), note=f"name-{i}"))
    return samples


def every_mutation_params() -> list[Any]:
    """every_mutation() as pytest parameters, each named by its place, category and name."""
    return [
        pytest.param(s, id=f"{i:02d}-{s.category}-{s.name[:30]}")
        for i, s in enumerate(every_mutation())
    ]


def judge_admission(sample: Sample, code: int, message: str, what: str) -> None:
    """Assert the API server's answer to creating the sample is a right one: admitted (201),
    or refused (422) naming one of its fields, and never a valid TaskRun refused or an
    invalid one admitted unless only the controller or the pod can tell. `what` describes
    the example in the failure message."""
    assert code in (201, 422), f"create answered neither 201 nor 422: {what}"
    if code == 422:
        assert sample.category in ("invalid", "hostile"), f"a valid TaskRun was refused: {what}"
        assert sample.named_in(message), f"the refusal names none of {sample.fields}: {what}"
    else:
        assert sample.category != "invalid" or sample.cluster_only, f"the CRD admitted: {what}"
