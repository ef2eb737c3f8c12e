"""Every KubernetesPodOperator argument is mapped to a spec field or listed (taskrun.api.kpo).

The installed provider's signature is the reference: a new KPO argument fails here until it
is mapped or listed as handled by the operator, ignored or refused.
"""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("airflow")
pytest.importorskip("airflow.providers.cncf.kubernetes")

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

from taskrun.airflow.operator import TaskRunOperator
from taskrun.api import (
    KPO_IGNORED_ARGUMENTS,
    KPO_OPERATOR_ARGUMENTS,
    KPO_REFUSED_ARGUMENTS,
    KPO_SPEC_FIELDS,
    OnKillAction,
)
from tests.airflow.conftest import needs_reference_kpo

LISTED = {
    **KPO_SPEC_FIELDS,
    **KPO_OPERATOR_ARGUMENTS,
    **KPO_IGNORED_ARGUMENTS,
    **KPO_REFUSED_ARGUMENTS,
}


def _kpo_arguments() -> list[str]:
    params = inspect.signature(KubernetesPodOperator.__init__).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY]


def test_every_kpo_argument_is_mapped_or_listed() -> None:
    arguments = _kpo_arguments()
    assert len(arguments) > 50  # the signature was read, not an empty list
    missing = [name for name in arguments if name not in LISTED]
    assert not missing, f"KPO arguments neither mapped nor listed in taskrun.api.kpo: {missing}"


@needs_reference_kpo()  # an older KPO lacks some arguments the spec maps (runtime_class_name)
def test_every_mapped_argument_is_a_kpo_argument() -> None:
    # A typo in a spec field's _kpo note would map an argument KPO does not have.
    assert sorted(set(KPO_SPEC_FIELDS) - set(_kpo_arguments())) == []


def test_every_listed_argument_is_accepted_by_the_operator() -> None:
    ours = inspect.signature(TaskRunOperator.__init__).parameters
    assert set(LISTED) <= set(ours)


def test_every_mapped_argument_reaches_the_spec() -> None:
    op = TaskRunOperator(task_id="t", image="i")
    assert set(op.kpo_kwargs()) == set(KPO_SPEC_FIELDS)


@pytest.mark.parametrize("argument", sorted(KPO_REFUSED_ARGUMENTS))
def test_refused_arguments_are_refused(argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        TaskRunOperator(task_id="t", image="i", **{argument: print})


def test_kpos_on_kill_actions_are_accepted() -> None:
    from airflow.providers.cncf.kubernetes.utils import pod_manager

    theirs = getattr(pod_manager, "OnKillAction", None)
    if theirs is None:
        pytest.skip("this provider's KPO has no on_kill_action")
    assert {a.value for a in theirs} <= {a.value for a in OnKillAction}
