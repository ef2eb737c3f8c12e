# devcluster's fixtures (`devcluster`, `devcluster_ns`) and the cluster choice (`--cluster`,
# `kube`, `kube_ns`, the devcluster_only marker) for every test directory.
pytest_plugins = ["devcluster.pytest_plugin", "testcluster.pytest_plugin"]
