"""The simulated kubelet's per-pod scenario: the annotation `devcluster.taskrun.dev/scenario`.

JSON, all keys optional (docs/architecture.md). Top-level keys describe the base
container (the first regular container) and the pod; `containers` overrides them
per container by name (for the base container on top of the top-level keys).

Per container: exitCode (0-255), runSeconds (default 0.05; logs are spread over
it), logs (default: one "devcluster: would run ..." line), files (absolute path ->
content, written through the container's volumeMounts just before it exits),
terminationMessage (written to its terminationMessagePath at exit), image (ok |
InvalidImageName | ErrImageNeverPull | ErrImagePull:<message>), startDelaySeconds
(time in ContainerCreating), oomKilled (the main process killed: exit 137; with an exitCode,
another process of the container was, as on cgroup v1, and the main one exited with that
code, reason OOMKilled still), ignoreSigterm.
Per pod: unschedulable (the FailedScheduling message), evictAfterSeconds,
nodeLostAfterSeconds (seconds after the pod started).

A file's content is a UTF-8 string, or, because annotations are capped at 256 KiB,
{"text": "...", "repeat": N}, {"base64": "..."}, or {"parts": [...]} concatenating those.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SCENARIO_ANNOTATION = "devcluster.taskrun.dev/scenario"

DEFAULT_RUN_SECONDS = 0.05

IMAGE_OK = "ok"
IMAGE_INVALID_NAME = "InvalidImageName"
IMAGE_NEVER_PULL = "ErrImageNeverPull"
IMAGE_PULL_ERROR_PREFIX = "ErrImagePull:"


class ScenarioError(ValueError):
    """The scenario annotation cannot be understood; the message names the key."""


@dataclass(frozen=True)
class ContainerScenario:
    """What one simulated container does. `None` means "not set": the kubelet decides."""

    exit_code: int | None = None
    run_seconds: float = DEFAULT_RUN_SECONDS
    logs: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    termination_message: str | None = None
    image: str = IMAGE_OK
    start_delay_seconds: float = 0.0
    oom_killed: bool = False
    ignore_sigterm: bool = False

    @property
    def image_pull_error(self) -> str | None:
        """The registry's message for `ErrImagePull:<message>`, else None."""
        if self.image.startswith(IMAGE_PULL_ERROR_PREFIX):
            return self.image[len(IMAGE_PULL_ERROR_PREFIX) :]
        return None


@dataclass(frozen=True)
class Scenario:
    """A pod's scenario: pod-level events and the per-container behaviour."""

    base: ContainerScenario = field(default_factory=ContainerScenario)
    containers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    unschedulable: str | None = None
    evict_after_seconds: float | None = None
    node_lost_after_seconds: float | None = None

    def for_container(self, name: str, *, is_base: bool) -> ContainerScenario:
        """The behaviour of container `name`: base keys (base only), then its override."""
        start = self.base if is_base else ContainerScenario()
        override = self.containers.get(name)
        if not override:
            return start
        return replace(start, **_container_fields(override, f"containers.{name}."))


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ScenarioError(f"{key} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{key} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ScenarioError(f"{key} must be a finite number >= 0, got {value!r}")
    return float(value)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{key} must be true or false, got {value!r}")
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{key} must be a string, got {value!r}")
    return value


def _image(value: Any, key: str) -> str:
    image = _str(value, key)
    if image in (IMAGE_OK, IMAGE_INVALID_NAME, IMAGE_NEVER_PULL) or image.startswith(
        IMAGE_PULL_ERROR_PREFIX
    ):
        return image
    raise ScenarioError(
        f"{key} must be one of ok, InvalidImageName, ErrImageNeverPull, "
        f"ErrImagePull:<message>, got {image!r}"
    )


def _file_content(value: Any, key: str) -> bytes:
    # Annotations cap at 256 KiB, so large results are described, not spelled out:
    # {"text": "ab", "repeat": 1000}, {"base64": "..."} or {"parts": [...]} of those,
    # besides a plain UTF-8 string.
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict):
        if set(value) == {"base64"}:
            try:
                return base64.b64decode(_str(value["base64"], key + ".base64"), validate=True)
            except binascii.Error as exc:
                raise ScenarioError(f"{key}.base64 is not valid base64: {exc}") from None
        if "text" in value and set(value) <= {"text", "repeat"}:
            repeat = _int(value.get("repeat", 1), key + ".repeat", 0, 64 * 1024 * 1024)
            return _str(value["text"], key + ".text").encode() * repeat
        if set(value) == {"parts"} and isinstance(value["parts"], list):
            return b"".join(
                _file_content(part, f"{key}.parts[{i}]") for i, part in enumerate(value["parts"])
            )
    raise ScenarioError(
        f'{key} must be a string, {{"text": str, "repeat": int}}, {{"base64": str}} or '
        f'{{"parts": [...]}} of those, got {value!r}'
    )


def _files(value: Any, key: str) -> dict[str, bytes]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{key} must be an object of absolute path -> content")
    files: dict[str, bytes] = {}
    for path, content in value.items():
        if not path.startswith("/"):
            raise ScenarioError(f"{key} paths must be absolute, got {path!r}")
        files[path] = _file_content(content, f"{key}[{path!r}]")
    return files


_CONTAINER_KEYS: dict[str, tuple[str, Any]] = {
    "exitCode": ("exit_code", lambda v, k: _int(v, k, 0, 255)),
    "runSeconds": ("run_seconds", _seconds),
    "logs": ("logs", _str),
    "files": ("files", _files),
    "terminationMessage": ("termination_message", _str),
    "image": ("image", _image),
    "startDelaySeconds": ("start_delay_seconds", _seconds),
    "oomKilled": ("oom_killed", _bool),
    "ignoreSigterm": ("ignore_sigterm", _bool),
}

_POD_KEYS = {"unschedulable", "evictAfterSeconds", "nodeLostAfterSeconds", "containers"}


def _container_fields(raw: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _CONTAINER_KEYS:
            if prefix or key not in _POD_KEYS:
                raise ScenarioError(
                    f"unknown key {prefix}{key}; known: {', '.join(sorted(_CONTAINER_KEYS))}"
                    + ("" if prefix else ", " + ", ".join(sorted(_POD_KEYS)))
                )
            continue
        name, check = _CONTAINER_KEYS[key]
        fields[name] = check(value, prefix + key)
    return fields


def parse_scenario(text: str | None) -> Scenario:
    """Parse the annotation's JSON text; None or empty means the default scenario."""
    if text is None or not text.strip():
        return Scenario()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"must be a JSON object, got {type(raw).__name__}")
    base = ContainerScenario(**_container_fields(raw, ""))
    containers = raw.get("containers", {})
    if not isinstance(containers, dict) or not all(
        isinstance(v, dict) for v in containers.values()
    ):
        raise ScenarioError("containers must be an object of container name -> object")
    for name, override in containers.items():
        _container_fields(override, f"containers.{name}.")  # validate now, not at start
    unschedulable = raw.get("unschedulable")
    evict = raw.get("evictAfterSeconds")
    lost = raw.get("nodeLostAfterSeconds")
    return Scenario(
        base=base,
        containers=containers,
        unschedulable=None if unschedulable is None else _str(unschedulable, "unschedulable"),
        evict_after_seconds=None if evict is None else _seconds(evict, "evictAfterSeconds"),
        node_lost_after_seconds=None if lost is None else _seconds(lost, "nodeLostAfterSeconds"),
    )


def pod_scenario(pod: Mapping[str, Any]) -> Scenario:
    """The scenario of a pod object (raises ScenarioError)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return parse_scenario(annotations.get(SCENARIO_ANNOTATION))
