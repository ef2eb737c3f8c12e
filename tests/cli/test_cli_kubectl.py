"""`kubectl taskrun` behaviour through the real kubectl: exit codes, following, output
formats, errors that say what to do, and completion."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import yaml
from cli_helpers import BIN, KUBECTL, SCENARIO, Kubectl, integration

from taskrun.cli import render


def scenario(**keys: object) -> str:
    return f"{SCENARIO}={json.dumps(keys)}"


def test_skipped_has_its_code_quiet_prints_only_the_result_and_rm_deletes(
    kubectl: Kubectl,
) -> None:
    manifest = {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"generateName": "skip-"},
        "spec": {
            "image": "busybox",
            "skipOnExitCode": [5],
            "annotations": {SCENARIO: json.dumps({"exitCode": 5})},
        },
    }
    skipped = kubectl("taskrun", "run", "-f", "-", stdin=json.dumps(manifest), code=99)
    assert render.EXIT_SKIPPED == 99
    assert "Skipped (exit code 5)" in skipped.err

    quiet = kubectl(
        "taskrun", "run", "answer", "--image", "busybox", "--xcom", "-q", "--rm",
        "--pod-annotation",
        scenario(logs="noise\n", files={"/airflow/xcom/return.json": '{"rows": 7}'}),
    )  # fmt: skip
    assert quiet.out == '{"rows": 7}\n' and quiet.err == ""
    assert "not found" in kubectl("taskrun", "result", "answer", code=1).err


def test_a_run_cancelled_elsewhere_exits_130_and_logs_f_follows_to_the_end(
    kubectl: Kubectl, runs: Any
) -> None:
    follower = kubectl.popen(
        "taskrun", "run", "long", "--image", "busybox",
        "--pod-annotation", scenario(runSeconds=60, logs="started\n"),
    )  # fmt: skip
    integration.poll(lambda: runs.get("long"), timeout=30, what="run to create taskrun/long")
    kubectl("taskrun", "wait", "long", "--for", "Running")
    tail = kubectl.popen("taskrun", "logs", "long", "-f")
    assert tail.stdout is not None
    assert tail.stdout.readline() == "started\n"  # from the live pod, before the cancel
    kubectl("taskrun", "cancel", "long")
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 130, err
    assert "started" in out and "taskrun/long Cancelled" in err
    tail.communicate(timeout=60)
    assert tail.returncode == 0  # it followed the pod to its end, then the run to Cancelled
    again = kubectl("taskrun", "cancel", "long")
    assert "already finished (Cancelled): nothing to cancel" in again.err


def test_wait_times_out_naming_the_run_and_its_phase(kubectl: Kubectl) -> None:
    kubectl(
        "taskrun", "run", "stuck", "--image", "busybox", "--no-wait",
        "--pod-annotation", scenario(runSeconds=60),
    )  # fmt: skip
    started = time.monotonic()
    waited = kubectl("taskrun", "wait", "stuck", "--timeout", "3s", code=124)
    assert 2.5 < time.monotonic() - started < 20
    assert "timed out after 3s waiting for taskrun/stuck to be finished; it is" in waited.err
    assert "kubectl taskrun describe stuck" in waited.err
    wrong = kubectl("taskrun", "wait", "stuck", "--timeout", "soon", code=2)
    assert "--timeout: 'soon' is not a duration" in wrong.err


def test_errors_name_the_taskrun_and_what_to_do(kubectl: Kubectl) -> None:
    missing = kubectl("taskrun", "logs", "nope", code=1)
    assert f'taskruns.taskrun.dev "nope" not found in namespace "{kubectl.namespace}"' in (
        missing.err
    )
    assert "kubectl taskrun list -A" in missing.err
    kubectl("taskrun", "run", "twice", "--image", "busybox", "--no-wait")
    clash = kubectl("taskrun", "run", "twice", "--image", "busybox", "--no-wait", code=1)
    assert "already exists" in clash.err and "kubectl taskrun rerun twice" in clash.err
    no_image = kubectl("taskrun", "run", "x", code=2)
    assert "run x: --image is required" in no_image.err
    bad_env = kubectl("taskrun", "run", "x", "--image", "i", "--env", "NOVALUE", code=2)
    assert "--env 'NOVALUE': expected KEY=VALUE" in bad_env.err
    context = kubectl("taskrun", "list", "--context", "elsewhere", code=1)
    assert 'context "elsewhere" is not in the kubeconfig' in context.err
    kubectl("taskrun", "wait", "twice")
    no_result = kubectl("taskrun", "result", "twice", code=1)
    assert "spec.doXcomPush is not true" in no_result.err


def test_output_formats_namespaces_and_retried_attempts(kubectl: Kubectl) -> None:
    manifest = {
        "apiVersion": "taskrun.dev/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": "flaky", "labels": {"team": "data"}},
        "spec": {
            "image": "busybox",
            "retries": 1,
            "retryBackoff": {"initialSeconds": 0},
            "annotations": {SCENARIO: json.dumps({"exitCode": 1, "logs": "try\n"})},
        },
    }
    ran = kubectl("taskrun", "run", "-f", "-", stdin=yaml.safe_dump(manifest), code=1)
    assert "--- attempt 2: pod flaky-2 ---" in ran.err
    assert ran.out.count("try\n") == 2  # each attempt's log, from its pod
    as_json = json.loads(kubectl("taskrun", "list", "-l", "team=data", "-o", "json").out)
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["flaky"]
    assert as_json["items"][0]["status"]["attempts"] == 2
    as_yaml = yaml.safe_load(kubectl("taskrun", "list", "-o", "yaml").out)
    assert as_yaml["kind"] == "List"
    wide = kubectl("taskrun", "list", "-o", "wide").out
    assert "flaky-2" in wide and wide.split()[7] == "POD"
    everywhere = kubectl("taskrun", "-n", "default", "list", "-A").out
    assert everywhere.startswith("NAMESPACE") and kubectl.namespace in everywhere
    elsewhere = kubectl("taskrun", "list", "-n", "kube-system")
    assert "No TaskRuns found in namespace kube-system." in elsewhere.err
    first = kubectl("taskrun", "logs", "flaky", "--attempt", "1", code=None)
    # Attempt 1's pod was deleted when attempt 2 began; status keeps the last pod's tail only.
    assert "pod flaky-1 is gone" in first.err
    described = kubectl("taskrun", "describe", "flaky").out
    assert "  1   flaky-1   Failed" in described and "  2   flaky-2   Failed" in described
    name = kubectl("taskrun", "rerun", "flaky", "-o", "name").out.strip()
    assert name.startswith("taskruns.taskrun.dev/flaky-")


def test_completion_through_kubectl(kubectl: Kubectl) -> None:
    kubectl("taskrun", "run", "alpha", "--image", "busybox", "--no-wait")
    kubectl("taskrun", "run", "beta", "--image", "busybox", "--no-wait")
    names = kubectl("__complete", "taskrun", "logs", "").out.splitlines()
    assert names == ["alpha", "beta", ":4"]
    assert kubectl("__complete", "taskrun", "delete", "alpha", "").out.splitlines() == [
        "beta",
        ":4",
    ]
    commands = kubectl("__complete", "taskrun", "ca").out.splitlines()
    assert commands == ["cancel", ":4"]


def test_a_terminal_gets_one_live_progress_line(kubectl: Kubectl) -> None:
    """stderr on a terminal: the line is redrawn in place (\\r, erase line), then cleared."""
    import os
    import pty
    import subprocess

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(KUBECTL), "taskrun", "run", "tty", "--image", "busybox",
         "--pod-annotation", scenario(runSeconds=1.5, logs="")],
        env=kubectl.env(), stdout=subprocess.PIPE, stderr=follower, text=True,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the plugin exited
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=30)
    os.close(leader)
    assert proc.returncode == 0
    text = seen.decode()
    assert "\r\x1b[Ktaskrun/tty  Running  pod tty-1" in text
    # Redrawn, not appended: no progress line ends with a newline.
    assert "taskrun/tty  Running  pod tty-1  0s\r\n" not in text
    assert re.search(r"taskrun/tty Succeeded \(exit code 0\) in \ds\s*$", text)


def test_a_cluster_without_the_crd_or_without_a_server_is_named(tmp_path: Any) -> None:
    import os
    import subprocess

    from devcluster import DevCluster
    from devcluster.cluster import kubeconfig

    bare = DevCluster(kubelet=False)
    bare.start()
    try:
        config = bare.write_kubeconfig(tmp_path / "bare")
        gone = tmp_path / "gone"
        gone.write_text(yaml.safe_dump(kubeconfig("http://127.0.0.1:9", context="gone")))
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}

        def plugin(path: Any) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(KUBECTL), "taskrun", "--kubeconfig", str(path), "list"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip

        no_crd = plugin(config)
        assert no_crd.returncode == 1
        assert "the cluster does not serve taskruns.taskrun.dev: install the CRD" in no_crd.stderr
    finally:
        bare.stop()
    unreachable = plugin(gone)
    assert unreachable.returncode == 1
    assert "cannot reach the API server http://127.0.0.1:9 (context gone)" in unreachable.stderr
