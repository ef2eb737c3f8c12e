"""docs/api-reference.md is generated from the models and the CRD."""

from __future__ import annotations

import sys
from pathlib import Path

from taskrun.api import TaskRunSpec

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))

import gen_api_docs  # noqa: E402


def test_api_reference_is_fresh() -> None:
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == gen_api_docs.generate(), "stale: run python tools/gen_api_docs.py"


def test_every_spec_field_is_documented_with_its_kpo_parameter() -> None:
    text = gen_api_docs.generate()
    for name, info in TaskRunSpec.model_fields.items():
        assert f"| `{info.alias or name}` |" in text
        assert info.description, name
        assert "KPO" in info.description or "Airflow" in info.description, name
        extra = info.json_schema_extra
        assert isinstance(extra, dict) and len({"kpo", "airflow"} & set(extra)) == 1, name


def test_the_not_in_spec_table_lists_every_listed_argument() -> None:
    text = gen_api_docs.generate()
    for _, table in gen_api_docs.NOT_IN_SPEC:
        for argument in table:
            assert f"`{argument}`" in text, argument


def test_documented_sizes_are_measured() -> None:
    yaml_size, json_size = gen_api_docs.sizes()
    assert f"{yaml_size:,} bytes of YAML" in gen_api_docs.generate()
    assert json_size < yaml_size < 200 * 1024
