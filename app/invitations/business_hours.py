"""Business hours for reminders: the org's days and hours, read in the candidate's zone. A
reminder due outside them moves to the nearest allowed moment before the interview; when none is
left between now and the interview it goes at once, and the reason is kept for its timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_DAYS = (0, 1, 2, 3, 4)
DEFAULT_START, DEFAULT_END = 9 * 60, 17 * 60
LOOKAHEAD = timedelta(days=8)  # the longest a reminder can move earlier (a week closed) and more


@dataclass(frozen=True)
class BusinessHours:
    """Allowed days (0 = Monday) and minutes after local midnight, [start, end]."""

    days: tuple[int, ...] = DEFAULT_DAYS
    start: int = DEFAULT_START
    end: int = DEFAULT_END

    def describe(self) -> str:
        """As a person reads it: "Mon–Fri 09:00–17:00"."""
        return f"{days_label(self.days)} {_hhmm(self.start)}–{_hhmm(self.end)}"


@dataclass(frozen=True)
class Placement:
    """When a reminder goes, and why when it is not at its own time (None: on time)."""

    at: datetime
    reason: str | None = None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def days_label(days: tuple[int, ...] | list[int]) -> str:
    """Mon–Fri for a run of days, else a list: "Mon, Wed, Sat"."""
    ordered = sorted(set(days))
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{DAY_NAMES[ordered[0]]}–{DAY_NAMES[ordered[-1]]}"
    return ", ".join(DAY_NAMES[d] for d in ordered) or "no day"


def zone_or(zone: str | None, fallback: str) -> ZoneInfo:
    """The zone named, else the fallback (an unknown or empty name is not an error here)."""
    for name in (zone, fallback, "UTC"):
        try:
            return ZoneInfo(name) if name else ZoneInfo(fallback)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time (24:00 is the next midnight; a time a DST change
    skips is read with the offset before the change, as zoneinfo does)."""
    day, minutes = (day + timedelta(days=1), 0) if minutes >= 1440 else (day, minutes)
    wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    return wall.astimezone(UTC)


def windows(hours: BusinessHours, tz: ZoneInfo, since: datetime, until: datetime) -> list:
    """The (start, end) UTC instants of every allowed day touching [since, until]."""
    first = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date() + timedelta(days=1)
    found, day = [], first
    while day <= last:
        if day.weekday() in hours.days:
            found.append((_local(day, hours.start, tz), _local(day, hours.end, tz)))
        day += timedelta(days=1)
    return found


def place(
    due: datetime, interview: datetime, now: datetime, hours: BusinessHours, tz: ZoneInfo
) -> Placement:
    """The allowed moment nearest to `due` in [now, interview) (the earlier on a tie), or now
    with the reason when there is none."""
    best: datetime | None = None
    for start, end in windows(hours, tz, min(due, now) - LOOKAHEAD, interview):
        low, high = max(start, now), min(end, interview - timedelta(seconds=1))
        if low > high:
            continue
        candidate = min(max(due, low), high)
        if best is None or (abs(candidate - due), candidate) < (abs(best - due), best):
            best = candidate
    label = f"{hours.describe()}, {tz.key}"
    if best is None:
        return Placement(
            now,
            f"Sent at once: no business hours ({label}) were left before the interview.",
        )
    if best == due:
        return Placement(due)
    moved = best.astimezone(tz)
    return Placement(
        best,
        f"Moved to {moved:%a %d %b %H:%M} from {due.astimezone(tz):%a %d %b %H:%M} "
        f"to keep to business hours ({label}).",
    )
