"""Settings the pod builder takes from the controller's configuration."""

from __future__ import annotations

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


def xcom_mode_for_server(version: tuple[int, int] | None) -> XcomMode:
    """``native`` when the API server is 1.29 or later, ``exec`` when it is older.

    ``version`` is (major, minor) as the server's ``/version`` says it; None (it did not say,
    or not in numbers) gives ``native``: supported servers are all 1.29 or later.
    """
    return "native" if version is None or version >= NATIVE_SIDECARS_SINCE else "exec"
