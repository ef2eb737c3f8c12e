"""tests/security: attacks on TaskRun, run against devcluster with the controller in-process.

The fixtures are the integration suite's (a devcluster with the CRD, a module-scoped
controller, a fresh namespace per test).
"""

from tests.integration.conftest import cluster, controller, runs  # noqa: F401
