# The fixtures of devcluster (`devcluster`, `devcluster_ns`), of the real control plane
# (`realcluster`, `realcluster_ns`) and the cluster choice (`--cluster`, `kube`, `kube_ns`,
# the devcluster_only marker) for every test directory.
pytest_plugins = [
    "devcluster.pytest_plugin",
    "realcluster.pytest_plugin",
    "testcluster.pytest_plugin",
]
