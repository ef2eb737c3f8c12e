# The fixtures of devcluster (`devcluster`, `devcluster_ns`) and of the real control plane
# (`realcluster`, `realcluster_ns`) for every test directory.
pytest_plugins = ["devcluster.pytest_plugin", "realcluster.pytest_plugin"]
