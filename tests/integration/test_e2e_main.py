"""`python -m controller`: flags, environment, and a real process against the cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from controller.config import Settings, StartupError, parse_args
from testcluster import Cluster
from tests.integration.conftest import Runs, poll


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, {"all_namespaces": True, "namespaces": (), "xcom_mode": "auto"}),
        (["-n", "a", "--namespace", "b"], {}, {"all_namespaces": False, "namespaces": ("a", "b")}),
        ([], {"TASKRUN_NAMESPACES": "x, y"}, {"namespaces": ("x", "y"), "all_namespaces": False}),
        (["--all-namespaces"], {"TASKRUN_NAMESPACES": "x"}, {"all_namespaces": True}),
        ([], {"TASKRUN_MAX_RESULT_BYTES": "10"}, {"max_result_bytes": 10}),
        (
            ["--max-result-bytes", "20"],
            {"TASKRUN_MAX_RESULT_BYTES": "10"},
            {"max_result_bytes": 20},
        ),
        (["--log-tail-lines", "5", "--log-tail-bytes", "64"], {}, {"log_tail_lines": 5}),
        (["--xcom-mode", "exec"], {}, {"xcom_mode": "exec"}),
        (["--peering", "ha"], {}, {"peering": "ha"}),
        (["--standalone"], {"TASKRUN_PEERING": "ha"}, {"peering": None}),
        (["--metrics-port", "0", "--health-port", "0"], {}, {"metrics_port": 0, "health_port": 0}),
        (
            ["--log-format", "json", "--max-workers", "3"],
            {},
            {"log_format": "json", "max_workers": 3},
        ),
        (["--selector", "taskrun.dev/shard=a"], {}, {"selector": "taskrun.dev/shard=a"}),
        ([], {"TASKRUN_SELECTOR": "team in (x,y)"}, {"selector": "team in (x,y)"}),
        ([], {}, {"selector": None}),
        ([], {}, {"pending_report_seconds": 2.0}),
        (["--pending-report-seconds", "0"], {}, {"pending_report_seconds": 0.0}),
        ([], {"TASKRUN_PENDING_REPORT_SECONDS": "5.5"}, {"pending_report_seconds": 5.5}),
        ([], {}, {"peering_lifetime": 60}),
        (["--peering", "ha", "--peering-lifetime", "15"], {}, {"peering_lifetime": 15}),
        ([], {}, {"xcom_sidecar_security_context": None}),
        (
            ["--xcom-sidecar-security-context", '{"runAsUser": 7}'],
            {},
            {"xcom_sidecar_security_context": {"runAsUser": 7}},
        ),
        (
            [],
            {"TASKRUN_XCOM_SIDECAR_SECURITY_CONTEXT": "{}"},
            {"xcom_sidecar_security_context": {}},
        ),
    ],
)
def test_flags_and_environment(argv, env, expected):
    settings = parse_args(argv, env)
    for key, value in expected.items():
        assert getattr(settings, key) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-result-bytes", "0"],
        ["--metrics-port", "70000"],
        ["--xcom-mode", "sometimes"],
        ["-n", "a", "-A"],
        ["--selector", "a=1,,b=2"],
        ["--pending-report-seconds", "-1"],
        ["--pending-report-seconds", "nan"],
        ["--peering-lifetime", "5"],
    ],
)
def test_bad_flags_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(argv, {})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    if "--pending-report-seconds" in argv:
        assert "--pending-report-seconds must be 0 or more" in err


def test_a_bad_environment_value_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args([], {"TASKRUN_XCOM_MODE": "sometimes"})
    assert "TASKRUN_XCOM_MODE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mode", "version", "resolved"),
    [
        ("auto", (1, 29), "native"),
        ("auto", (1, 37), "native"),
        ("auto", (1, 28), "exec"),
        ("auto", None, "native"),
        ("exec", (1, 37), "exec"),
        ("native", (1, 20), "native"),
    ],
)
def test_xcom_mode_auto_follows_the_server_version(mode, version, resolved):
    assert Settings(xcom_mode=mode).core(version).pod.xcom_mode == resolved


@pytest.mark.parametrize(
    ("value", "problem"),
    [("[1]", "must be a JSON object, got list"), ("{bad", "Expecting property name")],
)
def test_a_bad_sidecar_security_context_names_the_flag(value, problem):
    with pytest.raises(StartupError) as raised:
        parse_args(["--xcom-sidecar-security-context", value], {})
    assert str(raised.value).startswith(f"--xcom-sidecar-security-context {value}: ")
    assert problem in str(raised.value)


def test_the_sidecar_security_context_reaches_the_pod_settings():
    settings = parse_args(["--xcom-sidecar-security-context", '{"runAsUser": 7}'], {})
    assert settings.core((1, 37)).pod.xcom_sidecar_security_context == {"runAsUser": 7}


def test_a_security_policy_file_is_loaded(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "default:\n  allowHostNetwork: true\nnamespaces:\n  strict:\n    allowHostNetwork: false\n"
    )
    policies = parse_args(["--security-policy", str(path)], {}).security_policy
    assert policies.for_namespace("any").allow_host_network is True
    assert policies.for_namespace("strict").allow_host_network is False


def test_help_works():
    done = subprocess.run(
        [sys.executable, "-m", "controller", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    for flag in ("--namespace", "--all-namespaces", "--xcom-mode", "--max-result-bytes"):
        assert flag in done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_controller_process_runs_a_taskrun(cluster: Cluster, runs: Runs):
    metrics_port = free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.controller_kubeconfig)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "--namespace",
            runs.namespace,
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            "0",
            "--log-format",
            "json",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runs.create("proc", scenario={"exitCode": 0})
        try:
            status = runs.wait_finished("proc", timeout=20)
        except AssertionError:
            process.terminate()
            raise AssertionError(process.communicate(timeout=15)[1][-3000:]) from None
        assert status["phase"] == "Succeeded"
        url = f"http://127.0.0.1:{metrics_port}/metrics"

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())

        # the status is visible in the API a moment before the controller counts it
        finished = 'taskrun_runs_finished_total{phase="Succeeded",reason="Succeeded"} 1.0'
        text = poll(lambda: (lambda t: t if finished in t else "")(scrape()), what="the metric")
        assert "taskrun_api_requests_total" in text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert process.returncode == 0, err[-2000:]
    # --log-format json: every line a JSON object a log shipper can index
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert entries, "the controller logged nothing"
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any("watching" in e["message"] for e in entries)
