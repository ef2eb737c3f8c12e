"""`python -m devcluster`: serves, writes a kubeconfig, prints the URL, stops on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "config"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devcluster", "--kubeconfig", str(kubeconfig), "--no-kubelet"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        with urllib.request.urlopen(url + "/version", timeout=5) as rsp:
            assert json.load(rsp)["minor"] == "37"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
