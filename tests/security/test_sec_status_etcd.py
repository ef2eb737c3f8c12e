"""Issue 13 item 3, at the default budget: statuses etcd would refuse never loop.

devcluster refuses, as etcd does, to store an object over 1.5 MiB (Go-encoded), with
kube-apiserver's 500 ``etcdserver: request is too large``. Before the budget, both runs
here were retried forever: the TaskRun never finished and its pod was never deleted.
"""

from __future__ import annotations

from controller.core import budget
from controller.handlers import Controller
from tests.integration.conftest import CONTROLLER_AGENT, Runs, poll

RESULT = "/airflow/xcom/return.json"


def test_a_result_that_escapes_past_etcd_s_limit_ends_result_too_large(
    controller: Controller, runs: Runs
):
    # 300,002 bytes, a third of --max-result-bytes; 1.8 MB once the API server encodes it
    content = {"parts": ['"', {"text": "<", "repeat": 300000}, '"']}
    runs.create("angle", scenario={"files": {RESULT: content}}, doXcomPush=True)
    final = runs.wait_finished("angle", timeout=15)
    assert (final["phase"], final["reason"]) == ("Failed", "ResultTooLarge"), final["message"]
    assert "300002 bytes, 1800006 as the API server encodes it" in final["message"]
    assert budget.encoded_size(final) <= budget.DEFAULT_MAX_STATUS_BYTES
    poll(lambda: runs.pods() == [], what="the pod deleted")


def test_a_status_write_the_server_refuses_ends_status_too_large(
    controller: Controller, runs: Runs
):
    # The spec takes most of etcd's 1.5 MiB; the status alone is well within the budget.
    big_env = [{"name": "BLOB", "value": "x" * 1_300_000}]
    content = {"parts": ['"', {"text": "y", "repeat": 300_000}, '"']}
    runs.create(
        "crowded",
        scenario={"files": {RESULT: content}},
        doXcomPush=True,
        envVars=big_env,
    )
    final = runs.wait_finished("crowded", timeout=15)
    assert (final["phase"], final["reason"]) == ("Failed", "StatusTooLarge"), final
    assert "etcdserver: request is too large" in final["message"]
    assert "result" not in final
    poll(lambda: runs.pods() == [], what="the pod deleted")
    refused = runs.cluster.requests.count(
        namespace=runs.namespace, verb="patch", code=500, user_agent=CONTROLLER_AGENT
    )
    assert refused == 1, refused  # not retried: the same body gets the same answer
