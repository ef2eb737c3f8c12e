"""The admission half of the fuzz suite on the session's cluster (--cluster), and devcluster
against it.

Every TaskRun the strategies of fuzz_strategies.py draw is created with `dryRun=All`
(nothing is stored) on the session's cluster: it must be admitted (201) or refused with a
422 naming the field, as test_fuzz.py's judge asks. On `--cluster=real` or `kubeconfig`
the same request also goes to a devcluster, and the two answers must agree: the same code,
and both refusals naming the field. A difference that stays is listed in KNOWN_DIFFERENCES
with its reason (and in docs/devcluster.md); none is today.

The controller half (what an admitted TaskRun ends as) stays in test_fuzz.py, on devcluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import (
    FUZZ,
    Sample,
    every_mutation_params,
    hostile_samples,
    invalid_samples,
    judge_admission,
    policy_samples,
    valid_samples,
)
from hypothesis import given, settings

from testcluster import Cluster
from testcluster.client import ApiError

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "fuzz-admission"
# (category, what the request carries) -> why devcluster and kube-apiserver differ there.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _admit(cluster: Cluster, sample: Sample) -> tuple[int, str]:
    """The API server's answer to creating the sample (dry run): code and message."""
    body = {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": sample.name, "namespace": NAMESPACE, **(sample.metadata or {})},
        "spec": sample.spec,
    }
    path = cluster.resource("taskruns").path(NAMESPACE)
    try:
        cluster.request("POST", path, query={"dryRun": "All"}, body=body)
    except ApiError as err:
        return err.code, err.message
    return 201, ""


@pytest.fixture(scope="module")
def clusters(kube: Cluster, request: pytest.FixtureRequest) -> tuple[Cluster, Cluster | None]:
    """The session's cluster and, when that is not devcluster, a devcluster to compare."""
    kube.apply_file(ROOT / "crds" / "taskrun.yaml")
    kube.wait_established("taskruns.taskrun.dev")
    kube.create_namespace(NAMESPACE)
    if kube.flavor == "devcluster":
        return kube, None
    dev = request.getfixturevalue("devcluster")
    reference = Cluster("devcluster", dev.kubeconfig_path)
    reference.apply_file(ROOT / "crds" / "taskrun.yaml")
    reference.create_namespace(NAMESPACE)
    return kube, reference


def check(clusters: tuple[Cluster, Cluster | None], sample: Sample) -> None:
    kube, reference = clusters
    code, message = _admit(kube, sample)
    what = f"{sample.describe()}\n-> {kube.flavor}: {code} {message[:400]}"
    judge_admission(sample, code, message, what)
    if reference is None:
        return
    dev_code, dev_message = _admit(reference, sample)
    if dev_code != code and sample.note in KNOWN_DIFFERENCES:
        return
    assert dev_code == code, (
        f"devcluster answered {dev_code} ({dev_message[:300]}), {kube.flavor} {code}: {what}"
    )
    if code == 422:
        assert sample.named_in(dev_message), (
            f"devcluster's refusal names none of {sample.fields}: {dev_message[:300]}"
        )


@settings(FUZZ, max_examples=15)
@given(sample=valid_samples())
def test_valid_taskruns_are_admitted(clusters: Any, sample: Sample) -> None:
    check(clusters, sample)


@settings(FUZZ, max_examples=40)
@given(sample=invalid_samples())
def test_almost_valid_taskruns_are_refused_alike(clusters: Any, sample: Sample) -> None:
    check(clusters, sample)


@settings(FUZZ, max_examples=10)
@given(sample=policy_samples())
def test_policy_taskruns_are_admitted(clusters: Any, sample: Sample) -> None:
    check(clusters, sample)


@settings(FUZZ, max_examples=40)
@given(sample=hostile_samples())
def test_hostile_taskruns_are_answered_alike(clusters: Any, sample: Sample) -> None:
    check(clusters, sample)


@pytest.mark.parametrize("sample", every_mutation_params())
def test_every_table_entry_is_answered_alike(clusters: Any, sample: Sample) -> None:
    check(clusters, sample)
