"""Airflow needs its home and config before the first `import airflow`: set them here.

Airflow is imported here only if installed, so the main venv (without Airflow) collects the
test modules, whose `pytest.importorskip("airflow")` then skips them cleanly.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = ROOT / "examples" / "dags"

_home = Path(tempfile.mkdtemp(prefix="taskrun-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_home))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_home / 'airflow.db'}")

# Airflow 2.10's ExecutorSafeguard keeps its state in a thread-local set up by the
# thread that first imports BaseOperator; an execute() on the main thread fails if a
# helper thread (a trigger's, say) imported it first. A worker imports it on its main
# thread; so does this, once the environment above is set. The main venv has no Airflow.
with contextlib.suppress(ImportError):
    import airflow.models.baseoperator  # noqa: F401


# The KPO whose surface and pod-building rules TaskRunOperator follows. Tests that use the
# installed provider as the oracle run only against it (Airflow 3.3 and 2.11 venvs); on
# Airflow 2.10 the newest provider is 10.10, an older KPO with fewer parameters.
KPO_REFERENCE = (10, 25)


def kpo_is_the_reference() -> bool:
    from importlib.metadata import version

    installed = version("apache-airflow-providers-cncf-kubernetes")
    return tuple(int(p) for p in installed.split(".")[:2]) >= KPO_REFERENCE


def needs_reference_kpo() -> object:
    import pytest

    return pytest.mark.skipif(
        not kpo_is_the_reference(),
        reason="the installed provider is older than KPO 10.25, the reference surface; "
        "the Airflow 3.3 and 2.11 runs hold TaskRunOperator to it",
    )
