"""Settings the pod builder takes from the controller's configuration."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

XcomMode = Literal["native", "exec"]

# KPO 10.25's pinned sidecar image (utils/xcom_sidecar.py). A pinned tag keeps the kubelet's
# default pull policy at IfNotPresent, and nodes that already ran KPO pods have it cached.
XCOM_SIDECAR_IMAGE = "alpine:3.24.2"


@dataclass(frozen=True)
class PodSettings:
    """How the controller shapes pods beyond what the TaskRun says.

    ``xcom_mode``: ``native`` runs the result sidecar as a native sidecar (Kubernetes 1.29+)
    that hands the result over on SIGTERM; ``exec`` uses KPO's sleeping sidecar, read with
    pods/exec. ``None`` resources / security context mean KPO's defaults.
    """

    xcom_mode: XcomMode = "native"
    xcom_sidecar_image: str = XCOM_SIDECAR_IMAGE
    xcom_sidecar_resources: dict[str, Any] | None = None
    xcom_sidecar_security_context: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.xcom_mode not in ("native", "exec"):
            raise ValueError(f"xcom_mode must be 'native' or 'exec', got {self.xcom_mode!r}")
        if not self.xcom_sidecar_image:
            raise ValueError("xcom_sidecar_image must not be empty")


# Native sidecars (init containers with restartPolicy: Always) are on by default from 1.29.
NATIVE_SIDECARS_SINCE = (1, 29)


def xcom_mode_for_server(version: Mapping[str, Any]) -> XcomMode:
    """``native`` when the API server's ``/version`` answer is 1.29 or later, else ``exec``.

    Unparseable versions give ``exec``: it works everywhere, only less well.
    """
    try:
        major = int(re.sub(r"\D", "", str(version.get("major", ""))))
        minor = int(re.sub(r"\D", "", str(version.get("minor", ""))))
    except ValueError:
        match = re.match(r"v?(\d+)\.(\d+)", str(version.get("gitVersion", "")))
        if not match:
            return "exec"
        major, minor = int(match[1]), int(match[2])
    return "native" if (major, minor) >= NATIVE_SIDECARS_SINCE else "exec"
