from typing import Any

import pytest

from controller.core.podsettings import PodSettings, xcom_mode_for_server


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((1, 29), "native"),
        ((1, 37), "native"),
        ((1, 28), "exec"),
        ((1, 0), "exec"),
        ((2, 0), "native"),
        (None, "native"),
    ],
)
def test_xcom_mode_for_server(version: tuple[int, int] | None, expected: str) -> None:
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
