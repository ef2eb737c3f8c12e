"""taskrun.api.human_duration: ages as kubectl shows them (apimachinery's HumanDuration)."""

from __future__ import annotations

import pytest

from taskrun.api import human_duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1, "0s"),  # clock skew
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (5 * 3600 + 60, "5h1m"),
        (30 * 3600, "30h"),
        (3 * 86400, "3d"),
        (3 * 86400 + 3600, "3d1h"),
        (20 * 86400, "20d"),
        (40 * 86400, "40d"),
        (2 * 365 * 86400 + 5 * 86400, "2y5d"),
        (3 * 365 * 86400, "3y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown
