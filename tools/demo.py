"""`make demo`: devcluster + the controller + examples/hello.yaml, shown with the real kubectl.

Everything runs on loopback and stops at the end. The kubectl commands are printed
as they run so they can be copied against a real cluster.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devcluster import DevCluster
from taskrun.api import CRD_NAME, PLURAL

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = str(Path(sys.executable).with_name("kubectl"))


def kubectl(kubeconfig: str, cache: str, *args: str, check: bool = True) -> str:
    if args[0] == "taskrun":
        # kubectl looks a plugin up by the words before the first flag: flags go after it.
        cmd = [KUBECTL, *args]
    else:
        cmd = [KUBECTL, "--kubeconfig", kubeconfig, "--cache-dir", cache, *args]
    print(f"\n$ kubectl {shlex.join(args)}", flush=True)
    # The plugin (kubectl-taskrun) is found on the PATH, next to this Python.
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, env=env
    )
    out = done.stdout
    print(out.rstrip(), flush=True)
    if check and done.returncode != 0:
        raise SystemExit(f"kubectl {args[0]} failed with exit code {done.returncode}")
    return out


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="taskrun-demo-") as tmp:
        cluster = DevCluster()
        cluster.start()
        kubeconfig = str(Path(tmp, "kubeconfig"))
        cluster.write_kubeconfig(kubeconfig)
        cache = str(Path(tmp, "kube-cache"))
        print(f"devcluster (simulated Kubernetes API + kubelet) serving at {cluster.url}")
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        controller = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller",
                "--all-namespaces",
                "--metrics-port",
                "0",
                "--health-port",
                "0",
            ],
            env=env,
            stdout=subprocess.DEVNULL if not os.environ.get("DEMO_VERBOSE") else None,
            stderr=subprocess.STDOUT if not os.environ.get("DEMO_VERBOSE") else None,
        )
        try:
            kubectl(kubeconfig, cache, "apply", "--validate=false", "-f", str(ROOT / "crds"))
            kubectl(
                kubeconfig,
                cache,
                "wait",
                "--for=condition=Established",
                f"crd/{CRD_NAME}",
                "--timeout=30s",
            )
            try:
                cluster.wait_for_watch(PLURAL, process=controller, timeout=60)
            except (RuntimeError, TimeoutError) as err:
                raise SystemExit(f"the controller did not start: {err}") from err
            print("controller is watching TaskRuns", flush=True)
            started = time.monotonic()
            kubectl(
                kubeconfig,
                cache,
                "apply",
                "--validate=false",
                "-f",
                str(ROOT / "examples" / "hello.yaml"),
            )
            kubectl(
                kubeconfig,
                cache,
                "wait",
                "--for=condition=Succeeded",
                "trun/hello",
                "--timeout=60s",
            )
            print(f"\n(TaskRun finished {time.monotonic() - started:.2f} s after apply)")
            kubectl(kubeconfig, cache, "get", "taskruns")
            kubectl(
                kubeconfig,
                cache,
                "get",
                "trun",
                "hello",
                "-o",
                "jsonpath={.status.phase} exit={.status.exitCode} result={.status.result}{'\\n'}",
            )
            kubectl(kubeconfig, cache, "describe", "trun", "hello")
            # The same loop with the plugin: create, stream the log, result, exit code.
            started = time.monotonic()
            kubectl(
                kubeconfig, cache, "taskrun", "run", "hi", "--image", "busybox", "--", "echo", "hi"
            )
            print(f"(kubectl taskrun run took {time.monotonic() - started:.2f} s)")
            kubectl(kubeconfig, cache, "taskrun", "list")
        finally:
            controller.terminate()
            try:
                controller.wait(timeout=10)
            except subprocess.TimeoutExpired:
                controller.kill()
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
