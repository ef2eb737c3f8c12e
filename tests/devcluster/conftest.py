# Fixtures `devcluster` and `devcluster_ns` (a root conftest may also load the plugin).
from devcluster.pytest_plugin import devcluster, devcluster_ns

__all__ = ["devcluster", "devcluster_ns"]
