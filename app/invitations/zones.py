"""Time zones on candidate pages and in their mail: only real IANA names are accepted, and a
missing or unknown stored zone falls back to the org's (then UTC)."""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones


class UnknownZone(ValueError):
    """A name that is not an IANA time zone."""


@functools.cache
def known_zones() -> frozenset[str]:
    """Every IANA zone name this system knows (read once)."""
    return frozenset(available_timezones())


def valid_zone(name: str | None) -> str:
    """The IANA zone name itself, or UnknownZone (a name no selector offered, or made up)."""
    if not name or name not in known_zones():
        raise UnknownZone(f"“{(name or '')[:64]}” is not a time zone we know.")
    return name


def zone_or(*names: str | None) -> str:
    """The first of the names that is a known zone, else UTC."""
    for name in names:
        if name and name in known_zones():
            return name
    return "UTC"


def local_when(starts: datetime, ends: datetime, zone: str) -> str:
    """'Tuesday 15 December 2026, 10:00–10:45 CET' in the given zone."""
    tz = ZoneInfo(zone_or(zone))
    start, end = starts.astimezone(tz), ends.astimezone(tz)
    return (
        f"{start.strftime('%A')} {start.day} {start.strftime('%B %Y, %H:%M')}"
        f"–{end.strftime('%H:%M')} {start.tzname()}"
    )
