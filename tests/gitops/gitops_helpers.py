"""The integration suite's controller runner and TaskRun helpers (loaded by path), for the
GitOps tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("taskrun_tests_integration_conftest", _path)
assert _spec is not None and _spec.loader is not None
integration = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = integration  # dataclasses look their module up there
    _spec.loader.exec_module(integration)
