"""taskrun.api's map of KubernetesPodOperator arguments agrees with the spec fields' notes."""

from __future__ import annotations

import pytest

from taskrun.api import (
    KPO_IGNORED_ARGUMENTS,
    KPO_OPERATOR_ARGUMENTS,
    KPO_REFUSED_ARGUMENTS,
    KPO_SPEC_FIELDS,
    TaskRunSpec,
)

# Spec fields whose note names an Airflow analogy, not a KPO argument the operator maps.
NOT_KPO = {"retries", "retry_delay", "on_kill", "-"}


def _notes() -> dict[str, set[str]]:
    notes = {}
    for name, info in TaskRunSpec.model_fields.items():
        extra = info.json_schema_extra
        kpo = extra.get("kpo") if isinstance(extra, dict) else None
        notes[info.alias or name] = set(str(kpo).split(", ")) if kpo else set()
    return notes


@pytest.mark.parametrize(("argument", "field"), sorted(KPO_SPEC_FIELDS.items()))
def test_each_mapped_argument_names_a_field_that_names_it(argument: str, field: str) -> None:
    notes = _notes()
    assert field in notes, f"{argument} maps to {field}, which TaskRunSpec does not have"
    assert argument in notes[field], f"spec.{field}'s kpo note {notes[field]} omits {argument}"


def test_every_field_that_names_a_kpo_argument_is_mapped() -> None:
    named = {(arg, field) for field, args in _notes().items() for arg in args - NOT_KPO}
    assert named == set(KPO_SPEC_FIELDS.items())


def test_the_tables_do_not_overlap() -> None:
    tables = [KPO_SPEC_FIELDS, KPO_OPERATOR_ARGUMENTS, KPO_IGNORED_ARGUMENTS, KPO_REFUSED_ARGUMENTS]
    seen: set[str] = set()
    for table in tables:
        assert not seen & set(table), seen & set(table)
        seen |= set(table)
