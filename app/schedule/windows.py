"""Slots from weekly windows ("Tue-Thu 10:00-16:00, 45 min, 15 min apart"), entered in the
org's zone in local wall time and returned as UTC start/end pairs.

A window's start and end are wall times on each day; between them slots are laid out in real
time, so every interview lasts exactly its duration, even on the day the clocks change. A window
edge a DST change skips moves to the first real instant after the gap; an edge the clocks repeat
takes the earlier reading for the start and the later one for the end (the whole window is used).
Pure: no database, no request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_SLOTS = 500  # one generation; more is almost always a typo in the dates or the duration
MAX_DAYS = 366
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class WindowError(ValueError):
    """The windows cannot make slots; the message says why, in the recruiter's words."""


@dataclass(frozen=True)
class Window:
    """Some weekdays (0 = Monday), from one wall time to a later one."""

    weekdays: frozenset[int]
    start: time
    end: time

    def label(self) -> str:
        """How the recruiter typed it, for messages."""
        days = ", ".join(DAY_NAMES[d] for d in sorted(self.weekdays))
        return f"{days} {self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Plan:
    """Everything a generation needs; times are wall times in `zone`."""

    windows: tuple[Window, ...]
    first_day: date
    last_day: date
    duration_minutes: int
    buffer_minutes: int = 0
    zone: str = "UTC"
    limit: int = MAX_SLOTS


@dataclass
class Generated:
    """The slots (UTC start, end) in time order, and the days where the clocks changed inside a
    window (slots there follow real time, which the page says)."""

    slots: list[tuple[datetime, datetime]] = field(default_factory=list)
    clock_changes: list[date] = field(default_factory=list)


def zone_info(zone: str) -> ZoneInfo:
    """The zone, or a clear error for one that does not exist."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WindowError(f"{zone!r} is not a time zone Herald knows.") from exc


def _check(plan: Plan) -> None:
    """Refuse plans that cannot make sensible slots, before any slot is made."""
    if not plan.windows:
        raise WindowError("Add at least one window: the days and the hours to offer.")
    if not 5 <= plan.duration_minutes <= 480:
        raise WindowError("A slot lasts between 5 minutes and 8 hours.")
    if not 0 <= plan.buffer_minutes <= 240:
        raise WindowError("The gap between slots is between 0 and 240 minutes.")
    if plan.last_day < plan.first_day:
        raise WindowError("The last day is before the first day.")
    if (plan.last_day - plan.first_day).days >= MAX_DAYS:
        raise WindowError(f"Generate at most {MAX_DAYS} days at once.")
    for window in plan.windows:
        if not window.weekdays or not window.weekdays <= set(range(7)):
            raise WindowError("Each window needs at least one day of the week.")
        if window.end <= window.start:
            raise WindowError(f"In {window.label()}, the end is not after the start.")
        length = _minutes(window.end) - _minutes(window.start)
        if length < plan.duration_minutes:
            raise WindowError(
                f"{window.label()} is shorter than one {plan.duration_minutes}-minute slot."
            )
    _refuse_overlaps(plan.windows)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _refuse_overlaps(windows: Iterable[Window]) -> None:
    """Two windows that share a weekday must not share any time that day."""
    listed = list(windows)
    for i, a in enumerate(listed):
        for b in listed[i + 1 :]:
            shared = a.weekdays & b.weekdays
            if shared and a.start < b.end and b.start < a.end:
                day = DAY_NAMES[min(shared)]
                raise WindowError(
                    f"{a.label()} and {b.label()} overlap on {day}: "
                    "make them one window or change the hours."
                )


def _edge(day: date, wall: time, tz: ZoneInfo, *, is_end: bool) -> datetime:
    """One window edge as UTC: past a DST gap; in a repeated hour, the widest reading."""
    local = datetime.combine(day, wall).replace(tzinfo=tz, fold=1 if is_end else 0)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        # the wall time does not exist: the clocks jumped over it; use the instant they jumped to
        utc = local.replace(fold=1).astimezone(UTC)
        utc = min(utc, local.replace(fold=0).astimezone(UTC))
        while utc.astimezone(tz).replace(tzinfo=None) < local.replace(tzinfo=None):
            utc += timedelta(minutes=1)
    return utc


def _changes_between(start: datetime, end: datetime, tz: ZoneInfo) -> bool:
    return start.astimezone(tz).utcoffset() != end.astimezone(tz).utcoffset()


def generate(plan: Plan, not_before: datetime | None = None) -> Generated:
    """The slots the plan makes, skipping any that start before `not_before` (UTC)."""
    tz = zone_info(plan.zone)
    _check(plan)
    duration = timedelta(minutes=plan.duration_minutes)
    step = duration + timedelta(minutes=plan.buffer_minutes)
    out = Generated()
    day = plan.first_day
    while day <= plan.last_day:
        for window in sorted(plan.windows, key=lambda w: w.start):
            if day.weekday() not in window.weekdays:
                continue
            start = _edge(day, window.start, tz, is_end=False)
            end = _edge(day, window.end, tz, is_end=True)
            if _changes_between(start, end, tz) and day not in out.clock_changes:
                out.clock_changes.append(day)
            at = start
            while at + duration <= end:
                if not_before is None or at >= not_before:
                    out.slots.append((at, at + duration))
                    if len(out.slots) > plan.limit:
                        raise WindowError(
                            f"These windows make more than {plan.limit} slots. Herald makes at "
                            f"most {plan.limit} at once: shorten the dates, or generate in parts."
                        )
                at += step
        day += timedelta(days=1)
    out.slots.sort()
    return out


def parse_weekdays(values: Iterable[str]) -> frozenset[int]:
    """Weekday checkboxes ('0'..'6') as a set; anything else is refused."""
    days = set()
    for value in values:
        if not (value.isascii() and value.isdigit() and 0 <= int(value) <= 6):
            raise WindowError("Pick days of the week from the list.")
        days.add(int(value))
    return frozenset(days)
