from typing import Any

import pytest

from controller.core.podsettings import PodSettings, xcom_mode_for_server


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ({"major": "1", "minor": "29"}, "native"),
        ({"major": "1", "minor": "37"}, "native"),
        ({"major": "1", "minor": "29+", "gitVersion": "v1.29.3-eks-1"}, "native"),
        ({"major": "1", "minor": "28"}, "exec"),
        ({"major": "1", "minor": "28+", "gitVersion": "v1.28.9-gke.1"}, "exec"),
        ({"major": "2", "minor": "0"}, "native"),
        ({"major": "", "minor": "", "gitVersion": "v1.30.1"}, "native"),
        ({"major": "", "minor": "", "gitVersion": "v1.27.0"}, "exec"),
        ({"gitVersion": "weird"}, "exec"),
        ({}, "exec"),
    ],
)
def test_xcom_mode_for_server(version: dict[str, Any], expected: str) -> None:
    assert xcom_mode_for_server(version) == expected


def test_defaults_are_kpos_sidecar_in_native_mode() -> None:
    settings = PodSettings()
    assert settings.xcom_mode == "native"
    assert settings.xcom_sidecar_image == "alpine:3.24.2"
    assert settings.xcom_sidecar_resources is None
    assert settings.xcom_sidecar_security_context is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"xcom_mode": "grpc"}, "xcom_mode"), ({"xcom_sidecar_image": ""}, "image")],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PodSettings(**kwargs)
