# devcluster's fixtures (`devcluster`, `devcluster_ns`) for every test directory.
pytest_plugins = ["devcluster.pytest_plugin"]
