"""The Dockerfile's build and install steps, replayed without Docker.

No container engine exists on the build machines, so this test reads the Dockerfile and
performs its COPY and RUN steps in temporary directories standing for each stage's root:
the builder makes the wheel from exactly the files the Dockerfile copies, the runtime
stage installs the pinned lock and then the wheel into a clean venv. Then the image's
ENTRYPOINT runs with its ENV. A Dockerfile change the replay does not understand fails
here instead of drifting.

`pip install` runs as `uv pip install` with the same arguments when uv is available: same
resolution from the same lock, but served from uv's cache so CI stays fast.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from deploy_helpers import DEPLOY, ROOT

pytestmark = pytest.mark.timeout(240)

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements" / "runtime.lock"
# The flags the deploy manifests and docs rely on.
MAIN_FLAGS = ("--namespace", "--all-namespaces", "--metrics-port", "--health-port", "--peering")
# Flags that only change caching or pip's own chatter, which uv does not accept.
PIP_ONLY_FLAGS = {"--no-cache-dir", "--disable-pip-version-check"}


def uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            assert m, f"FROM not understood: {line}"
            stages.append(Stage(name=m.group(2) or str(len(stages)), base=m.group(1)))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
        else:
            assert keyword == "ARG", f"{keyword} before the first FROM"
    return stages


def parse_env(rest: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(rest))


def dockerignore() -> list[str]:
    path = ROOT / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class Replay:
    """Runs one stage's steps with every absolute path moved under ``root``."""

    def __init__(self, root: Path, stages: dict[str, Replay]) -> None:
        self.root = root
        self.stages = stages
        self.workdir = "/"
        self.env: dict[str, str] = {}
        self.ignore = dockerignore()

    def host(self, path: str) -> Path:
        absolute = path if path.startswith("/") else os.path.join(self.workdir, path)
        return self.root / os.path.normpath(absolute).lstrip("/")

    def host_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        for key, value in self.env.items():
            if key == "PATH":
                value = os.pathsep.join(
                    str(self.host(p)) if p.startswith("/opt/") else p for p in value.split(":")
                )
            env[key] = value
        return env

    def copy(self, rest: str) -> None:
        args = shlex.split(rest)
        source_stage = None
        if args[0].startswith("--from="):
            source_stage = self.stages[args.pop(0).split("=", 1)[1]]
        *sources, dest = args
        for source in sources:
            if source_stage is not None:
                src = source_stage.host(source)
            else:
                src = ROOT / source
                assert not self.ignored(source), f"COPY {source} is excluded by .dockerignore"
            assert src.exists(), f"COPY source {source} does not exist"
            target = self.host(dest)
            if src.is_dir():
                shutil.copytree(src, target, ignore=self.ignored_names, dirs_exist_ok=True)
            else:
                if dest.endswith("/"):
                    target = target / src.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)

    def ignored(self, relative: str) -> bool:
        relative = relative.removeprefix("./").rstrip("/") or "."
        return any(fnmatch(relative, p.removeprefix("**/")) or relative == p for p in self.ignore)

    def ignored_names(self, directory: str, names: list[str]) -> set[str]:
        return {n for n in names if any(fnmatch(n, p.removeprefix("**/")) for p in self.ignore)}

    def run(self, rest: str) -> None:
        for command in rest.split("&&"):
            self.run_one(shlex.split(command))

    def run_one(self, argv: list[str]) -> None:
        cwd = self.host(self.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        match argv:
            case ["python", "-m", "venv", target]:
                uv_exe = uv()
                if uv_exe:
                    self.call(
                        [uv_exe, "venv", "-q", "--python", sys.executable, str(self.host(target))]
                    )
                else:
                    self.call([sys.executable, "-m", "venv", str(self.host(target))])
            case ["pip", "wheel", *args]:
                self.call([sys.executable, "-m", "pip", "wheel", *self.paths(args)], cwd=cwd)
            case [exe, "install", *args] if exe.endswith("/bin/pip"):
                python = str(self.host(exe).with_name("python"))
                uv_exe = uv()
                if uv_exe:
                    flags = [a for a in self.paths(args) if a not in PIP_ONLY_FLAGS]
                    self.uv_install(uv_exe, python, flags)
                else:
                    self.call([python, "-m", "pip", "install", *self.paths(args)])
            case [exe, "-m", "compileall", *args] if exe.endswith("/bin/python"):
                self.call([str(self.host(exe)), "-m", "compileall", *self.paths(args)])
            case ["rm", "-rf", *paths]:
                for p in paths:
                    shutil.rmtree(self.host(p), ignore_errors=True)
            case _:
                pytest.fail(f"the Dockerfile replay does not know the command {argv}")

    def uv_install(self, uv_exe: str, python: str, args: list[str]) -> None:
        base = [uv_exe, "pip", "install", "-q", "--python", python]
        # The cache answers on a warm machine without any network; fall back to the index.
        offline = subprocess.run([*base, "--offline", *args], capture_output=True, text=True)
        if offline.returncode != 0:
            self.call([*base, *args])

    def paths(self, args: list[str]) -> list[str]:
        out: list[str] = []
        for arg in args:
            if arg.startswith("/"):
                matches = sorted(glob.glob(str(self.host(arg))))
                out.extend(matches or [str(self.host(arg))])
            else:
                out.append(arg)
        return out

    def call(self, argv: list[str], cwd: Path | None = None) -> None:
        proc = subprocess.run(
            argv, cwd=cwd, env=self.host_env(), capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout}\n{proc.stderr}"


@dataclass
class Image:
    root: Path
    entrypoint: list[str]
    env: dict[str, str]
    user: str
    python: Path


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    if not LOCK.exists():
        pytest.skip("requirements/runtime.lock is missing (`uv pip compile pyproject.toml`)")
    stages = parse_dockerfile(DOCKERFILE.read_text())
    replays: dict[str, Replay] = {}
    entrypoint: list[str] = []
    user = ""
    for stage in stages:
        replay = Replay(tmp_path_factory.mktemp(f"stage-{stage.name}"), replays)
        replays[stage.name] = replay
        for keyword, rest in stage.instructions:
            if keyword == "WORKDIR":
                replay.workdir = rest
            elif keyword == "ENV":
                replay.env.update(parse_env(rest))
            elif keyword == "COPY":
                replay.copy(rest)
            elif keyword == "RUN":
                replay.run(rest)
            elif keyword == "ENTRYPOINT":
                entrypoint = json.loads(rest)
            elif keyword == "USER":
                user = rest
            else:
                assert keyword in ("ARG", "EXPOSE", "LABEL", "CMD"), f"unknown {keyword}"
    final = replays[stages[-1].name]
    env = final.host_env()
    python = shutil.which(entrypoint[0], path=env["PATH"])
    assert python, f"{entrypoint[0]} not on the image's PATH {env['PATH']}"
    yield Image(final.root, entrypoint, env, user, Path(python))


def snapshot(root: Path) -> set[tuple[str, int]]:
    return {(str(p), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_dockerfile_shape() -> None:
    stages = parse_dockerfile(DOCKERFILE.read_text())
    assert [s.name for s in stages] == ["builder", "runtime"]
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    runtime = dict(stages[-1].instructions)
    assert runtime["USER"] == "65532:65532"
    assert json.loads(runtime["ENTRYPOINT"]) == ["python", "-m", "controller"]
    assert parse_env(runtime["ENV"])["PYTHONDONTWRITEBYTECODE"] == "1"
    assert "requirements/runtime.lock" in text
    # The ports the image documents are the ones the Deployment opens.
    deployment = yaml.safe_load((DEPLOY / "base" / "deployment.yaml").read_text())
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert sorted(runtime["EXPOSE"].split()) == sorted(str(p["containerPort"]) for p in ports)


def test_wheel_installs_into_a_clean_venv_with_the_pinned_lock(image: Image) -> None:
    code = (
        "import importlib.metadata as m, controller, taskrun, kopf, sys;"
        "print(controller.__file__); print(sys.prefix); print(m.version('kopf'))"
    )
    proc = subprocess.run(
        [str(image.python), "-c", code],
        env=image.env,
        cwd=image.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    controller_file, prefix, kopf_version = proc.stdout.split()
    # Imported from the installed wheel, not from the working tree.
    assert Path(controller_file).is_relative_to(image.root)
    assert Path(prefix).is_relative_to(image.root)
    pinned = re.search(r"^kopf==(\S+)$", LOCK.read_text(), re.MULTILINE)
    assert pinned and kopf_version == pinned.group(1)


def test_entrypoint_help_names_the_main_flags_and_writes_nothing(image: Image) -> None:
    if not (ROOT / "controller" / "__main__.py").exists():
        pytest.skip("controller/__main__.py is not written yet")
    before = snapshot(image.root)
    proc = subprocess.run(
        [str(image.python), *image.entrypoint[1:], "--help"],
        env=image.env,
        cwd=image.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for flag in MAIN_FLAGS:
        assert flag in proc.stdout, f"{flag} missing from --help:\n{proc.stdout}"
    # The flags deploy/ passes must all exist, or the pod would crash-loop on start.
    used = set(re.findall(r"^\s*(?:- |value: )(--[a-z][a-z-]+)", _deploy_text(), re.MULTILINE))
    assert "--metrics-port" in used
    for flag in sorted(used):
        assert flag in proc.stdout, f"deploy/ passes {flag}, which --help does not list"
    # A read-only root filesystem: the run must not have written into the image.
    assert snapshot(image.root) == before


def _deploy_text() -> str:
    return "\n".join(p.read_text() for p in DEPLOY.rglob("*.yaml"))
