"""Every `kubectl taskrun` command once, through the real kubectl, against devcluster and the
real controller; the session is docs/cli.md's transcript.

`TASKRUN_WRITE_DOCS=1 pytest tests/cli/test_cli_transcript.py` rewrites the transcript;
otherwise the test compares it with what ran, times, ages and column widths aside.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path

from cli_helpers import SCENARIO, Kubectl

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"
START, END = "<!-- transcript:start -->", "<!-- transcript:end -->"


def scenario(**keys: object) -> str:
    return f"{SCENARIO}={json.dumps(keys)}"


def test_every_command_once(kubectl: Kubectl) -> None:
    k = kubectl
    ran = k("taskrun", "run", "hi", "--image", "busybox", "--", "echo", "hi", record=True)
    assert "devcluster: would run busybox echo hi" in ran.out
    assert "taskrun/hi Succeeded (exit code 0)" in ran.out

    ran = k("taskrun", "run", "-f", str(ROOT / "examples" / "hello.yaml"), record=True)
    assert "hello from a TaskRun" in ran.out and '{"answer": 42}' in ran.out

    result = k("taskrun", "result", "hello", record=True)
    assert json.loads(result.out) == {"answer": 42}

    logs = k("taskrun", "logs", "hello", record=True)
    # The pod went when the run's log had been read (delete_pod): the tail says it is one.
    assert "is gone: the last 1 line kept in status.logs.tail" in logs.out
    assert "hello from a TaskRun" in logs.out

    failed = k(
        "taskrun", "run", "report", "--image", "busybox:1.36",
        "--pod-annotation", scenario(exitCode=3, logs="cannot reach the database\n"),
        "--", "sh", "-c", "./report.sh",
        code=3, record=True,
    )  # fmt: skip
    assert "cannot reach the database" in failed.out
    assert "taskrun/report Failed (exit code 3)" in failed.out

    described = k("taskrun", "describe", "report", record=True)
    for expected in ("Reason:           ExitCode", "Exit Code:        3", "Warning   ExitCode"):
        assert expected in described.out, described.out

    k(
        "taskrun", "run", "load", "--image", "busybox", "--no-wait",
        "--label", "dag_id=etl", "--label", "task_id=load",
        "--label", "run_id=manual__2026-12-04T10_00_00-00_00-ab12cd34e",
        "--", "load.sh",
        record=True,
    )  # fmt: skip
    k("taskrun", "wait", "load", record=True)
    listed = k("taskrun", "list", "--dag", "etl", record=True)
    assert listed.out.split("\n")[0].split() == [
        "NAME", "PHASE", "REASON", "EXIT", "ATTEMPTS", "AGE", "DURATION", "DAG", "TASK", "RUN",
    ]  # fmt: skip
    assert [line.split()[0] for line in listed.out.splitlines()[1:]] == ["load"]

    k(
        "taskrun", "run", "sleeper", "--image", "busybox", "--no-wait",
        "--pod-annotation", scenario(runSeconds=60, logs="working...\n"),
        "--", "sleep", "60",
        record=True,
    )  # fmt: skip
    k("taskrun", "wait", "sleeper", "--for", "Running", record=True)
    live = k("taskrun", "logs", "sleeper", record=True)
    assert live.out == "working...\n"  # from the pod itself: no tail note
    k("taskrun", "cancel", "sleeper", record=True)
    cancelled = k("taskrun", "wait", "sleeper", "--timeout", "30s", code=130, record=True)
    assert "taskrun/sleeper Cancelled" in cancelled.out

    k("taskrun", "rerun", "report", "--name", "report-2", record=True)
    again = k("taskrun", "wait", "report-2", code=3, record=True)
    assert "Failed (exit code 3)" in again.out
    k("taskrun", "list", record=True)
    k("taskrun", "delete", "hi", "report-2", record=True)
    names = k("taskrun", "list", "-o", "name", record=True)
    assert "taskruns.taskrun.dev/hi\n" not in names.out
    assert "taskruns.taskrun.dev/report\n" in names.out

    check_transcript(render(k), k.namespace)


def render(k: Kubectl) -> str:
    parts = []
    for command, output, code in k.transcript:
        text = output.replace(k.namespace, "demo")
        text = text.replace(str(ROOT) + "/", "")
        command = command.replace(str(ROOT) + "/", "")
        shown = f"$ kubectl {command}\n{text}"
        if code:
            shown += f"(exit code {code})\n"
        parts.append(shown)
    return "```console\n" + "\n".join(parts) + "```"


def normalized(text: str) -> str:
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
    text = re.sub(r"\b\d+(h|m|s|d)(\d+(m|s|h))?\b", "<age>", text)
    return re.sub(r"[ \t]+", " ", text)


def check_transcript(transcript: str, namespace: str) -> None:
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    current, tail = rest.split(END, 1)
    if os.environ.get("TASKRUN_WRITE_DOCS"):
        DOC.write_text(f"{head}{START}\n{transcript}\n{END}{tail}")
        return
    want, got = normalized(current.strip("\n")), normalized(transcript)
    diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), lineterm=""))
    assert want == got, (
        "docs/cli.md's transcript is stale (TASKRUN_WRITE_DOCS=1 pytest "
        f"tests/cli/test_cli_transcript.py rewrites it):\n{diff}"
    )
