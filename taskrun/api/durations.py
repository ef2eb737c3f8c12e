"""Durations as text: status.duration's Go style and kubectl's ages. No pydantic here, so
the kubectl plugin can import it and still start fast (docs/cli.md)."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """Go-style short duration for status.duration: 45s, 1m3s, 2h0m5s."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def human_duration(seconds: float) -> str:
    """How kubectl shows an age (apimachinery's duration.HumanDuration): 119s, 2m5s, 3d1h, 2y5d.

    The one copy for the kubectl plugin's tables and devcluster's server-side printing.
    """
    if seconds < -1:
        return "<invalid>"
    s = max(0, int(seconds))  # up to a second in the future is clock skew: now
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"
