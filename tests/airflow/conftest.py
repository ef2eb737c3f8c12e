"""Airflow needs its home and config before the first `import airflow`: set them here.

Nothing in this file imports Airflow, so the main venv (without Airflow) collects the
test modules, whose `pytest.importorskip("airflow")` then skips them cleanly.
"""

from __future__ import annotations

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
