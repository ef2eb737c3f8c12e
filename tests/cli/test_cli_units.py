"""The plugin's pure parts: kubeconfig rules, exit codes, durations, labels, progress."""

from __future__ import annotations

import base64
import io
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskrun.cli import kubeconfig, render
from taskrun.cli.complete import complete
from taskrun.cli.follow import Progress
from taskrun.cli.kubeconfig import ConfigError


def write_config(path: Path, contexts: dict[str, dict[str, Any]], current: str = "") -> Path:
    """A kubeconfig with one cluster and one user per context, named after it."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": n, "cluster": {"server": c.get("server", f"http://{n}.example:80")}}
            for n, c in contexts.items()
        ],
        "users": [{"name": n, "user": c.get("user", {})} for n, c in contexts.items()],
        "contexts": [
            {
                "name": n,
                "context": {
                    "cluster": n,
                    "user": n,
                    **({"namespace": c["ns"]} if "ns" in c else {}),
                },
            }
            for n, c in contexts.items()
        ],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_kubeconfig_merge_first_file_wins_and_flags_override(tmp_path: Path) -> None:
    a = write_config(tmp_path / "a", {"dev": {"ns": "team-a", "user": {"token": "A"}}}, "dev")
    b = write_config(
        tmp_path / "b",
        {"dev": {"ns": "team-b", "user": {"token": "B"}}, "prod": {"user": {"token": "P"}}},
        "prod",
    )
    env = {"KUBECONFIG": f"{a}:{tmp_path / 'missing'}:{b}", "HOME": str(tmp_path)}
    conn = kubeconfig.load(env=env)
    assert (conn.context, conn.namespace, conn.headers["Authorization"]) == (
        "dev",
        "team-a",
        "Bearer A",
    )
    prod = kubeconfig.load(context="prod", namespace="jobs", env=env)
    assert (prod.server, prod.namespace, prod.headers["Authorization"]) == (
        "http://prod.example:80",
        "jobs",
        "Bearer P",
    )
    only_b = kubeconfig.load(kubeconfig=str(b), env=env)
    assert only_b.context == "prod" and only_b.namespace == "default"


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"kubeconfig": "/nope"}, {}, "--kubeconfig /nope: no such file"),
        ({}, {"KUBECONFIG": "/nope"}, "no kubeconfig found (looked at /nope)"),
        (
            {"context": "staging"},
            None,
            'context "staging" is not in the kubeconfig (contexts: dev)',
        ),
    ],
)
def test_kubeconfig_errors_say_what_to_fix(
    tmp_path: Path, kwargs: dict[str, str], env: dict[str, str] | None, message: str
) -> None:
    config = write_config(tmp_path / "c", {"dev": {}}, "dev")
    with pytest.raises(ConfigError) as err:
        kubeconfig.load(**kwargs, env=env if env is not None else {"KUBECONFIG": str(config)})
    assert message in str(err.value)


def test_kubeconfig_auth_forms(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    plugin = tmp_path / "cred.py"
    plugin.write_text(
        f"#!{sys.executable}\nimport json, os\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',"
        " 'status': {'token': 'exec-' + os.environ['WHO']}}))\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    config = write_config(
        tmp_path / "c",
        {
            "file": {"user": {"tokenFile": "token"}},  # relative to the kubeconfig's folder
            "basic": {"user": {"username": "u", "password": "p"}},
            "exec": {
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": str(plugin),
                        "env": [{"name": "WHO", "value": "me"}],
                    }
                }
            },
        },
    )
    env = {"KUBECONFIG": str(config)}
    assert kubeconfig.load(context="file", env=env).headers["Authorization"] == "Bearer from-file"
    basic = base64.b64encode(b"u:p").decode()
    assert kubeconfig.load(context="basic", env=env).headers["Authorization"] == f"Basic {basic}"
    assert kubeconfig.load(context="exec", env=env).headers["Authorization"] == "Bearer exec-me"


def test_in_cluster_reads_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "namespace").write_text("jobs")
    (sa / "ca.crt").write_text("")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", sa)
    monkeypatch.setattr(kubeconfig.ssl, "create_default_context", lambda **_: None)
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config there
    conn = kubeconfig.load(env=env)
    assert (conn.server, conn.namespace, conn.headers["Authorization"]) == (
        "https://10.0.0.1:443",
        "jobs",
        "Bearer sa-token",
    )
    assert kubeconfig.load(namespace="other", env=env).namespace == "other"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({"phase": "Succeeded", "exitCode": 0}, 0),
        ({"phase": "Failed", "exitCode": 3}, 3),
        ({"phase": "Failed", "exitCode": 137, "reason": "OOMKilled"}, 137),
        ({"phase": "Failed", "reason": "ImagePullFailed"}, render.EXIT_FAILED),
        ({"phase": "Failed", "exitCode": 0, "reason": "ResultInvalid"}, render.EXIT_FAILED),
        ({"phase": "Skipped", "exitCode": 5}, render.EXIT_SKIPPED),
        ({"phase": "Cancelled"}, render.EXIT_CANCELLED),
    ],
)
def test_exit_codes(status: dict[str, Any], code: int) -> None:
    assert render.exit_code(status) == code


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_durations(text: str, seconds: float) -> None:
    assert render.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "1h 2m", "-3s"])
def test_bad_durations_are_named(text: str) -> None:
    with pytest.raises(ValueError, match=f"{text!r} is not a duration"):
        render.parse_duration(text)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("etl", "etl"),
        # Changed by sanitising, or too long: cut, then md5 of the original (KPO's rule).
        ("manual__2026-12-04T10:00:00+00:00", "manual__2026-12-04T1000000000-6780f9e7f"),
        ("x" * 70, "x" * 53 + "-7d56c0f83"),
    ],
)
def test_airflow_label_values_as_kpo_makes_them(value: str, label: str) -> None:
    assert render.safe_label_value(value) == label


def test_progress_is_one_live_line_on_a_terminal_and_lines_otherwise() -> None:
    now = datetime(2026, 12, 4, 10, 0, 30, tzinfo=timezone.utc)
    run: dict[str, Any] = {
        "metadata": {"name": "job", "creationTimestamp": "2026-12-04T10:00:00Z"},
        "status": {"phase": "Running", "podName": "job-1", "startTime": "2026-12-04T10:00:02Z"},
    }
    tty = io.StringIO()
    live = Progress(tty, True, lambda: now)
    live.show(run)
    live.show(run)
    live.clear()
    assert tty.getvalue() == ("\r\033[Ktaskrun/job  Running  pod job-1  28s" * 2) + "\r\033[K"
    plain = io.StringIO()
    lines = Progress(plain, False, lambda: now)
    lines.show(run)
    lines.show(run)  # nothing new: no second line
    assert plain.getvalue() == "taskrun/job  Running  pod job-1  28s\n"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([""], ["run", "logs", "result", "list", "describe", "cancel", "rerun", "wait", "delete"]),
        (["re"], ["result", "rerun"]),
        (["wait", "x", "--for", "S"], ["Succeeded", "Skipped"]),
        (["list", "-o", ""], ["json", "yaml", "name", "wide"]),
        (["run", "--x"], ["--xcom"]),
    ],
)
def test_completion_without_a_cluster(words: list[str], expected: list[str]) -> None:
    candidates, directive = complete(words)
    assert candidates == expected and directive == 4
