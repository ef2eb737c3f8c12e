"""Fixtures of the GitOps tests: the integration suite's cluster, controller and runs."""

from gitops_helpers import integration

cluster = integration.cluster
controller = integration.controller
runs = integration.runs
