"""`kubectl taskrun`: the kubectl plugin for TaskRuns (docs/cli.md).

It reaches the cluster through its own small client (standard library HTTP, kubeconfig
read as kubectl reads it), so it needs nothing the controller image does not have.
"""
