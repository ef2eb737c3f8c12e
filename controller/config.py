"""Settings of the controller, from command-line flags and TASKRUN_* environment variables.

docs/configuration.md is the one table of these; keep both in step.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from controller.core.actions import DEFAULT_PENDING_REPORT_SECONDS, CoreSettings
from controller.core.budget import DEFAULT_MAX_STATUS_BYTES, MIN_MAX_STATUS_BYTES
from controller.core.podsettings import XCOM_SIDECAR_IMAGE, PodSettings, xcom_mode_for_server
from controller.core.security import PolicySet
from taskrun.api import (
    DEFAULT_LOG_TAIL_BYTES,
    DEFAULT_LOG_TAIL_LINES,
    DEFAULT_MAX_HOLD_SECONDS,
    DEFAULT_MAX_RESULT_BYTES,
)

XcomSetting = Literal["native", "exec", "auto"]
LogFormat = Literal["text", "json"]


class ConfigError(ValueError):
    """A setting is invalid; the message names the flag."""


class StartupError(Exception):
    """The controller cannot start as configured: one line naming the flag and its value."""

    def __init__(self, flag: str, value: object, problem: str) -> None:
        # One line, whatever the cause printed (YAML errors span several).
        super().__init__(f"{flag} {value}: {' '.join(str(problem).split())}")


# kopf's default; kopf refreshes the heartbeat 10 s before it runs out, hence at least 10.
DEFAULT_PEERING_LIFETIME = 60


@dataclass(frozen=True)
class Settings:
    """Everything the controller is told at start."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    metrics_port: int = 8080
    health_port: int = 8081
    xcom_mode: XcomSetting = "auto"
    xcom_sidecar_image: str = XCOM_SIDECAR_IMAGE
    # None: the sidecar follows the base container (controller/core/pod.py); a dict replaces it.
    xcom_sidecar_security_context: dict[str, Any] | None = None
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    log_tail_lines: int = DEFAULT_LOG_TAIL_LINES
    log_tail_bytes: int = DEFAULT_LOG_TAIL_BYTES
    max_status_bytes: int = DEFAULT_MAX_STATUS_BYTES
    security_policy: PolicySet = field(default_factory=PolicySet)
    peering: str | None = None
    # How long a peer's heartbeat counts: a crashed active replica is replaced within it.
    peering_lifetime: int = DEFAULT_PEERING_LIFETIME
    log_format: LogFormat = "text"
    max_workers: int = 20
    max_hold_seconds: float = DEFAULT_MAX_HOLD_SECONDS
    pending_report_seconds: float = DEFAULT_PENDING_REPORT_SECONDS
    # A label selector on TaskRuns: shards one scope among controllers (docs/operations.md).
    selector: str | None = None
    # --kubeconfig; None: $KUBECONFIG, ~/.kube/config or the in-cluster service account.
    kubeconfig: str | None = None

    def core(self, server_version: tuple[int, int] | None = None) -> CoreSettings:
        """The decision settings; ``auto`` xcom mode resolves against the server version."""
        mode = xcom_mode_for_server(server_version) if self.xcom_mode == "auto" else self.xcom_mode
        return CoreSettings(
            pod=PodSettings(
                xcom_mode=mode,
                xcom_sidecar_image=self.xcom_sidecar_image,
                xcom_sidecar_security_context=self.xcom_sidecar_security_context,
            ),
            policies=self.security_policy,
            max_result_bytes=self.max_result_bytes,
            log_tail_lines=self.log_tail_lines,
            log_tail_bytes=self.log_tail_bytes,
            max_hold_seconds=self.max_hold_seconds,
            pending_report_seconds=self.pending_report_seconds,
            max_status_bytes=self.max_status_bytes,
        )


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(f"TASKRUN_{name}")
    return value if value not in (None, "") else None


def _at_least(low: int, flag: str, value: int) -> int:
    if value < low:
        raise ValueError(f"{flag} must be {low} or more, not {value}")
    return value


def _non_negative(value: float) -> float:
    if value < 0 or value != value:
        raise ValueError(f"--pending-report-seconds must be 0 or more, not {value}")
    return value


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {type(value).__name__}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 0..65535, got {value}")
    return value


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; defaults come from TASKRUN_* variables in ``env``."""
    env = os.environ if env is None else env

    def default(name: str, fallback: object) -> object:
        value = _env(env, name)
        return fallback if value is None else value

    parser = argparse.ArgumentParser(
        prog="python -m controller",
        description="The TaskRun controller: runs each TaskRun (taskrun.dev/v1alpha1) as a pod.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch this namespace (repeatable; env TASKRUN_NAMESPACES, comma-separated)",
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help="watch every namespace (the default when no --namespace is given)",
    )
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=default("METRICS_PORT", 8080),
        help="port of /metrics; 0 turns it off (default 8080)",
    )
    parser.add_argument(
        "--health-port",
        type=_port,
        default=default("HEALTH_PORT", 8081),
        help="port of kopf's liveness endpoint /healthz; 0 turns it off (default 8081)",
    )
    parser.add_argument(
        "--xcom-mode",
        choices=["native", "exec", "auto"],
        default=default("XCOM_MODE", "auto"),
        help="result sidecar: native (Kubernetes >= 1.29), exec (KPO's), auto (by server version)",
    )
    parser.add_argument(
        "--xcom-sidecar-image",
        default=default("XCOM_SIDECAR_IMAGE", XCOM_SIDECAR_IMAGE),
        help=f"image of the result sidecar (default {XCOM_SIDECAR_IMAGE})",
    )
    parser.add_argument(
        "--xcom-sidecar-security-context",
        metavar="JSON",
        default=default("XCOM_SIDECAR_SECURITY_CONTEXT", None),
        help="securityContext of the result sidecar, a JSON object; default: Restricted and the"
        " base container's user when that must run as non-root, else none (KPO's)",
    )
    parser.add_argument(
        "--max-result-bytes",
        type=_positive,
        default=default("MAX_RESULT_BYTES", DEFAULT_MAX_RESULT_BYTES),
        help="largest return.json accepted; larger ends ResultTooLarge"
        f" (default {DEFAULT_MAX_RESULT_BYTES})",
    )
    parser.add_argument(
        "--log-tail-lines",
        type=_positive,
        default=default("LOG_TAIL_LINES", DEFAULT_LOG_TAIL_LINES),
        help=f"lines of log kept in status.logs.tail (default {DEFAULT_LOG_TAIL_LINES})",
    )
    parser.add_argument(
        "--log-tail-bytes",
        type=_positive,
        default=default("LOG_TAIL_BYTES", DEFAULT_LOG_TAIL_BYTES),
        help=f"bytes of log kept in status.logs.tail (default {DEFAULT_LOG_TAIL_BYTES})",
    )
    parser.add_argument(
        "--max-status-bytes",
        type=_positive,
        default=default("MAX_STATUS_BYTES", DEFAULT_MAX_STATUS_BYTES),
        help="largest TaskRun status, as the API server encodes it; log tails, warnings and"
        " old messages are cut first, then the run ends ResultTooLarge / StatusTooLarge"
        f" (default {DEFAULT_MAX_STATUS_BYTES}; at least {MIN_MAX_STATUS_BYTES})",
    )
    parser.add_argument(
        "--max-hold-seconds",
        type=float,
        default=default("MAX_HOLD_SECONDS", DEFAULT_MAX_HOLD_SECONDS),
        help="longest a finished pod is kept for its log reader"
        f" (default {DEFAULT_MAX_HOLD_SECONDS:g})",
    )
    parser.add_argument(
        "--pending-report-seconds",
        type=float,
        default=default("PENDING_REPORT_SECONDS", DEFAULT_PENDING_REPORT_SECONDS),
        help="a pod that starts within this long is reported Running directly, with no "
        "Pending status write (default 2; 0 reports Pending at once)",
    )
    parser.add_argument(
        "--security-policy",
        metavar="FILE",
        default=default("SECURITY_POLICY", None),
        help="YAML security policy {default: {...}, namespaces: {ns: {...}}}",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        metavar="NAME",
        default=default("PEERING", None),
        help="kopf peering object for HA: one active controller per name",
    )
    peering.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: this is the only controller (the default)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=default("PEERING_LIFETIME", DEFAULT_PEERING_LIFETIME),
        help="seconds a replica's peering heartbeat counts (kopf's lifetime, default 60): a "
        "killed active replica is replaced within about this long",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=default("LOG_FORMAT", "text"),
        help="log line format (default text)",
    )
    parser.add_argument(
        "--selector",
        "-l",
        metavar="LABELSELECTOR",
        default=default("SELECTOR", None),
        help="only TaskRuns matching this label selector, e.g. taskrun.dev/shard=a"
        " (filtered by the API server; for sharding)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        default=None,
        help="kubeconfig to connect with (default: $KUBECONFIG, ~/.kube/config, or the"
        " in-cluster service account)",
    )
    parser.add_argument(
        "--max-workers",
        type=_positive,
        default=default("MAX_WORKERS", 20),
        help="TaskRuns reconciled at the same time (default 20)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from flags, falling back to TASKRUN_* variables, then to the defaults."""
    env = os.environ if env is None else env
    parser = build_parser(env)
    args = parser.parse_args(argv)
    # argparse checks choices on the command line only, not on defaults taken from env.
    for name, choices in (
        ("xcom_mode", ("native", "exec", "auto")),
        ("log_format", ("text", "json")),
    ):
        if getattr(args, name) not in choices:
            parser.error(
                f"TASKRUN_{name.upper()}: invalid choice {getattr(args, name)!r}"
                f" (choose from {', '.join(choices)})"
            )
    namespaces: tuple[str, ...] = tuple(args.namespace or ())
    if not namespaces and not args.all_namespaces:
        namespaces = tuple(
            n.strip() for n in (_env(env, "NAMESPACES") or "").split(",") if n.strip()
        )
    try:
        policy = load_policy(args.security_policy)
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError) as err:
        raise StartupError("--security-policy", args.security_policy, str(err)) from err
    try:
        sidecar_context = _json_object(args.xcom_sidecar_security_context)
    except ValueError as err:
        raise StartupError(
            "--xcom-sidecar-security-context", args.xcom_sidecar_security_context, str(err)
        ) from err
    try:
        return Settings(
            namespaces=namespaces,
            all_namespaces=not namespaces,
            metrics_port=int(args.metrics_port),
            health_port=int(args.health_port),
            xcom_mode=args.xcom_mode,
            xcom_sidecar_image=str(args.xcom_sidecar_image),
            xcom_sidecar_security_context=sidecar_context,
            max_result_bytes=int(args.max_result_bytes),
            log_tail_lines=int(args.log_tail_lines),
            log_tail_bytes=int(args.log_tail_bytes),
            max_status_bytes=_at_least(
                MIN_MAX_STATUS_BYTES, "--max-status-bytes", int(args.max_status_bytes)
            ),
            security_policy=policy,
            peering=None if args.standalone else args.peering,
            peering_lifetime=_at_least(10, "--peering-lifetime", int(args.peering_lifetime)),
            log_format=args.log_format,
            max_workers=int(args.max_workers),
            max_hold_seconds=float(args.max_hold_seconds),
            pending_report_seconds=_non_negative(float(args.pending_report_seconds)),
            selector=_selector(args.selector),
            kubeconfig=args.kubeconfig,
        )
    except (ValueError, OSError) as err:
        parser.error(str(err))
        raise  # parser.error exits; this keeps type checkers informed


def _selector(text: str | None) -> str | None:
    """A label selector as the API server takes it; refused early when plainly malformed."""
    if text is None or not text.strip():
        return None
    for term in text.split(","):
        if not term.strip() or term.strip() in ("=", "!=", "=="):
            raise ConfigError(f"--selector: empty term in {text!r}")
    return text.strip()


def load_policy(path: str | None) -> PolicySet:
    """The security policy in a YAML file; the built-in default without one."""
    if not path:
        return PolicySet()
    data = yaml.safe_load(Path(path).read_text())
    return PolicySet.from_dict(data)
