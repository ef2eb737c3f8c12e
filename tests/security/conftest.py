"""tests/security: attacks on TaskRun, run against the session's cluster (--cluster) with the
controller in-process.

The fixtures are the integration suite's (the cluster handle with the CRD, a module-scoped
controller, a fresh namespace per test).
"""

from tests.integration.conftest import cluster, controller, runs  # noqa: F401
