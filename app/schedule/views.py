"""What the schedule page shows: a campaign's slots grouped by day in the org's zone, each with
its interviewers, who is booked and the free places; the slots a candidate can be moved to."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app import clock
from app.extensions import db
from app.models import Booking, BookingStatus, Campaign, InterviewSlot, Organization, SlotStatus
from app.schedule.services import ScheduleError, overlaps
from app.schedule.windows import zone_info

MAX_SHOWN = 2000  # slots listed on one page (a generation makes at most 500)


@dataclass
class SlotRow:
    """One slot as the page lists it."""

    slot: InterviewSlot
    starts: datetime  # in the org's zone
    ends: datetime
    bookings: list[Booking] = field(default_factory=list)

    @property
    def free(self) -> int:
        if self.slot.status != SlotStatus.OPEN:
            return 0
        return max(0, self.slot.capacity - self.slot.booked)


def local(day: date, at: time, zone: str) -> datetime:
    """A wall time in the org's zone as UTC; refuses one a DST change skips."""
    tz = zone_info(zone)
    wall = datetime.combine(day, at)
    utc = wall.replace(tzinfo=tz).astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != wall:
        raise ScheduleError(
            f"{day.day} {wall:%b %Y %H:%M} does not exist in {zone}: the clocks change then. "
            "Pick another time."
        )
    return utc


def first_error(form: FlaskForm) -> str:
    """The first validation message, for the banner (fields show their own too)."""
    for name, errors in form.errors.items():
        if name == "csrf_token":
            return "The form expired. Reload the page and try again."
        for error in errors:
            if isinstance(error, str):
                return error
            if isinstance(error, dict):
                for messages in error.values():
                    return messages[0]
    return "Check the form."


def _booked(org: Organization, campaign: Campaign) -> dict[int, list[Booking]]:
    """Active bookings by slot, with their candidates."""
    booked: dict[int, list[Booking]] = defaultdict(list)
    for booking in db.session.scalars(
        select(Booking)
        .where(
            Booking.org_id == org.id,
            Booking.campaign_id == campaign.id,
            Booking.status == BookingStatus.ACTIVE,
        )
        .options(selectinload(Booking.candidate))
        .order_by(Booking.id)
    ):
        booked[booking.slot_id].append(booking)
    return booked


def schedule(org: Organization, campaign: Campaign) -> dict[str, Any]:
    """Days (org-local date → slot rows), counts, overlap warnings and move targets."""
    tz = zone_info(org.timezone)
    slots = db.session.scalars(
        select(InterviewSlot)
        .where(InterviewSlot.org_id == org.id, InterviewSlot.campaign_id == campaign.id)
        .options(selectinload(InterviewSlot.interviewers))
        .order_by(InterviewSlot.starts_at, InterviewSlot.id)
        .limit(MAX_SHOWN)
    ).all()
    booked = _booked(org, campaign)
    days: dict[date, list[SlotRow]] = defaultdict(list)
    for slot in slots:
        row = SlotRow(slot, slot.starts_at.astimezone(tz), slot.ends_at.astimezone(tz))
        row.bookings = booked.get(slot.id, [])
        days[row.starts.date()].append(row)
    now = clock.now()
    rows = [r for day in days.values() for r in day]
    return {
        "days": dict(days),
        "targets": [r for r in rows if r.free and r.slot.starts_at > now],
        "totals": {
            "slots": sum(1 for r in rows if r.slot.status != SlotStatus.CANCELLED),
            "booked": sum(len(r.bookings) for r in rows),
            "free": sum(r.free for r in rows if r.slot.starts_at > now),
        },
        "warnings": overlaps(org, [s.id for s in slots if s.status != SlotStatus.CANCELLED]),
        "zone": org.timezone,
        "truncated": len(slots) >= MAX_SHOWN,
    }
