"""Time for the decision code: injected, so deadlines are tested without sleeping."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Protocol

_FRACTION = re.compile(r"\.(\d+)")


class Clock(Protocol):
    """Where the controller gets the current time from."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, second precision, as Kubernetes writes timestamps."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse a Kubernetes timestamp (RFC 3339, Z or offset, optional fraction)."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat takes 3 or 6 fraction digits only; Go writes 1 to 9.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def parse_optional(text: object) -> datetime | None:
    """parse_time for a field that may be missing or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None
