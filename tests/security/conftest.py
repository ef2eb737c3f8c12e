"""tests/security: attacks on TaskRun, with the controller in-process, on the session's
cluster (--cluster; `make test-real` runs them on the real control plane).

The fixtures are the integration suite's (the cluster with the CRD, a module-scoped
controller, a fresh namespace per test). Tests that need the simulator are marked
devcluster_only and say why.
"""

from tests.integration.conftest import cluster, controller, runs  # noqa: F401
