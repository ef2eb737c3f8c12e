"""taskrun.api imports its pydantic models on first use (docs/cli.md: the plugin's start)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import taskrun.api


@pytest.mark.parametrize("name", taskrun.api.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(taskrun.api, name) is not None
    assert name in dir(taskrun.api)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        taskrun.api.Nope  # noqa: B018


def test_names_alone_import_no_model() -> None:
    code = (
        "import sys; from taskrun.api import GROUP, Phase, XCOM_SIDECAR_NAME; "
        "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'taskrun.api.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "pydantic" not in out
    assert "taskrun.api.spec" not in out
    assert "taskrun.api.names" in out


def test_a_lazy_name_is_the_models_own() -> None:
    from taskrun.api.spec import TaskRunSpec

    assert taskrun.api.TaskRunSpec is TaskRunSpec
    assert taskrun.api.validate_spec({"image": "i"}).image == "i"
