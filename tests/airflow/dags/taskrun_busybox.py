"""examples/dags/taskrun_examples.py's three tasks with busybox only, for a node with no
registry (the real node has the local busybox and no Python image).

`ok` prints ``LOG_LINES`` (more than the TaskRun's log tail keeps, with a pause in the
middle so that the blocking operator follows a running container) and writes ``RESULT``,
which `check` reads from XCom; `fails` exits 3; `skipped` exits 99. The scenario
annotations make devcluster's simulated kubelet and the node agent do the same, so the DAG
runs on every cluster.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from taskrun.airflow import TaskRunOperator

SCENARIO = "devcluster.taskrun.dev/scenario"
IMAGE = "busybox:1.36"
ROWS = 300
RESULT = {"rows": 42, "table": "events"}
LOG_LINES = [
    "loading events",
    *(f"row {i} of {ROWS}" for i in range(1, ROWS + 1)),
    "loaded 42 rows",
]
WRITE_RESULT = f"""\
echo 'loading events'
i=1
while [ $i -le {ROWS} ]; do echo "row $i of {ROWS}"; i=$((i + 1)); done
sleep 2
echo 'loaded 42 rows'
mkdir -p /airflow/xcom
echo '{json.dumps(RESULT)}' > /airflow/xcom/return.json
"""


def scenario(**behaviour: Any) -> dict[str, str]:
    return {SCENARIO: json.dumps(behaviour)}


def build(dag_id: str, *, deferrable: bool) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["taskrun", "test"],
    ) as dag:
        ok = TaskRunOperator(
            task_id="ok",
            image=IMAGE,
            cmds=["sh", "-c"],
            arguments=[WRITE_RESULT],
            do_xcom_push=True,
            deferrable=deferrable,
            annotations=scenario(
                runSeconds=2,
                logs="".join(f"{line}\n" for line in LOG_LINES),
                files={"/airflow/xcom/return.json": json.dumps(RESULT)},
            ),
        )
        TaskRunOperator(
            task_id="fails",
            image=IMAGE,
            cmds=["sh", "-c", "echo 'cannot reach the database'; exit 3"],
            deferrable=deferrable,
            annotations=scenario(exitCode=3, logs="cannot reach the database\n"),
        )
        TaskRunOperator(
            task_id="skipped",
            image=IMAGE,
            cmds=["sh", "-c", "echo 'no new data'; exit 99"],
            skip_on_exit_code=99,
            deferrable=deferrable,
            annotations=scenario(exitCode=99, logs="no new data\n"),
        )

        @task
        def check(result: dict[str, Any]) -> None:
            if result != RESULT:
                raise ValueError(f"unexpected result {result!r}")

        check(ok.output)
    return dag


blocking = build("taskrun_busybox_blocking", deferrable=False)
deferrable = build("taskrun_busybox_deferrable", deferrable=True)
