"""TaskRunOperator examples: the same three tasks blocking and deferrable.

`ok` writes a result that `check` reads from XCom; `fails` exits 3; `skipped` exits 99,
which skip_on_exit_code turns into a skip. Replace `KubernetesPodOperator(` with
`TaskRunOperator(` in your DAGs the same way.

The `devcluster.taskrun.dev/scenario` annotations make the simulated kubelet of devcluster
(the project's test cluster) do what the commands would do; a real cluster ignores them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

# One import for Airflow 3 and 2.11: the compat layer shipped with the provider.
from airflow.providers.common.compat.sdk import DAG, task

from taskrun.airflow import TaskRunOperator

SCENARIO = "devcluster.taskrun.dev/scenario"
RESULT = {"rows": 42, "table": "events"}
WRITE_RESULT = (
    "import json; print('loading events'); print('loaded 42 rows'); "
    f"json.dump({RESULT!r}, open('/airflow/xcom/return.json', 'w'))"
)


def scenario(**behaviour: Any) -> dict[str, str]:
    return {SCENARIO: json.dumps(behaviour)}


def build(dag_id: str, *, deferrable: bool) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["taskrun", "example"],
    ) as dag:
        ok = TaskRunOperator(
            task_id="ok",
            image="python:3.12-slim",
            cmds=["python", "-c"],
            arguments=[WRITE_RESULT],
            do_xcom_push=True,
            deferrable=deferrable,
            annotations=scenario(
                logs="loading events\nloaded 42 rows\n",
                files={"/airflow/xcom/return.json": json.dumps(RESULT)},
            ),
        )
        TaskRunOperator(
            task_id="fails",
            image="busybox:1.36",
            cmds=["sh", "-c", "echo 'cannot reach the database'; exit 3"],
            deferrable=deferrable,
            annotations=scenario(exitCode=3, logs="cannot reach the database\n"),
        )
        TaskRunOperator(
            task_id="skipped",
            image="busybox:1.36",
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


blocking = build("taskrun_blocking", deferrable=False)
deferrable = build("taskrun_deferrable", deferrable=True)
