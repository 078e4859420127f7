"""Mail that follows a booking's changes: calendar entries for the slot's interviewers (booked,
moved, cancelled), and the candidate's notice when the recruiter moves them or cancels their
slot. Queued in the caller's transaction (services never commit); the .ics is described in the
message context and built when the mail is sent, organised by the org's sender address."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from app.extensions import db
from app.mail.calendar import calendar_spec
from app.mail.outbox import queue_message
from app.models import Booking, Campaign, Candidate, InterviewSlot, Job, Organization

Change = Literal["booked", "moved", "cancelled"]
_TITLES = {
    "booked": "Interview booked",
    "moved": "Interview moved",
    "cancelled": "Interview cancelled",
}


def when_text(starts_at: datetime, ends_at: datetime, zone: str) -> str:
    """'Tue 3 Mar 2026, 10:00–10:45 (Europe/Paris)': a slot as a person in `zone` reads it."""
    tz = ZoneInfo(zone)
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    return f"{start:%a} {start.day} {start:%b %Y, %H:%M}–{end:%H:%M} ({zone})"


def _interviewer_uid(booking: Booking, email: str) -> str:
    """Stable per booking and interviewer: each update replaces the same calendar entry."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]
    return f"iv-{digest}-{booking.uid}"


def _base(booking: Booking) -> tuple[Organization, Campaign, Job, Candidate]:
    campaign = db.session.get(Campaign, booking.campaign_id)
    return (
        db.session.get(Organization, booking.org_id),
        campaign,
        db.session.get(Job, campaign.job_id),
        db.session.get(Candidate, booking.candidate_id),
    )


def interviewer_notices(
    booking: Booking, change: Change, previous_slot: InterviewSlot | None = None
) -> int:
    """Calendar mail to the interviewers of the booking's slot: REQUEST when booked or moved in,
    CANCEL when cancelled; on a move, those only in `previous_slot` get a CANCEL. Returns how
    many were queued. Call after the booking's slot_id and sequence hold their new values."""
    slot = db.session.get(InterviewSlot, booking.slot_id)
    org, campaign, job, candidate = _base(booking)
    now_in = {p.email.strip().lower(): p for p in slot.interviewers}
    queued = 0
    if previous_slot is not None and previous_slot.id != slot.id:
        for person in previous_slot.interviewers:
            if person.email.strip().lower() not in now_in:
                _queue(org, job, candidate, booking, previous_slot, person, "cancelled")
                queued += 1
    for person in now_in.values():
        _queue(org, job, candidate, booking, slot, person, change)
        queued += 1
    return queued


def _queue(org, job, candidate, booking, slot, person, change: Change) -> None:  # noqa: ANN001
    """One interviewer's mail with its calendar entry (times in the org's zone)."""
    name = candidate.full_name or candidate.email
    when = when_text(slot.starts_at, slot.ends_at, org.timezone)
    location = slot.location or job.location or ""
    context = {
        "title": _TITLES[change],
        "note": (
            "This time is no longer booked: the calendar entry is cancelled."
            if change == "cancelled"
            else f"You interview {name} for {job.title}."
        ),
        "candidate": {"name": name},
        "job": {"title": job.title},
        "org": {"name": org.name},
        "interview": {"when": when, "location": location},
        "_calendar": calendar_spec(
            uid=_interviewer_uid(booking, person.email),
            sequence=booking.sequence,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            summary=f"Interview: {name} ({job.title})",
            location=location,
            description=f"{job.title} interview with {name}, booked through {org.name}.",
            attendee_name=person.name,
            attendee_email=person.email,
            cancel=change == "cancelled",
        ),
    }
    queue_message(
        org_id=org.id,
        kind="interviewer_invite",
        template="interviewer_invite",
        to_email=person.email,
        to_name=person.name,
        context=context,
        idempotency_key=f"interviewer:{booking.id}:{booking.sequence}:{change}:{person.email}",
    )


def candidate_notice(
    booking: Booking, kind: Literal["booking_rescheduled", "booking_cancelled"], was: str = ""
) -> None:
    """The candidate's mail when the recruiter moves them (updated .ics, same UID, higher
    SEQUENCE) or cancels their slot (CANCEL and a link to pick again), in their booking's zone."""
    org, campaign, job, candidate = _base(booking)
    slot = db.session.get(InterviewSlot, booking.slot_id)
    when = when_text(slot.starts_at, slot.ends_at, booking.time_zone)
    location = slot.location or job.location or ""
    name = candidate.full_name or candidate.email
    context = {
        "candidate": {"name": name, "first_name": candidate.first_name or ""},
        "job": {"title": job.title},
        "org": {"name": org.name},
        "interview": {"when": when, "location": location, "was": was},
        "_invitation": booking.invitation_id,
        "_calendar": calendar_spec(
            uid=booking.uid,
            sequence=booking.sequence,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            summary=f"Interview: {job.title} ({org.name})",
            location=location,
            description=f"{job.title} interview with {org.name}.",
            attendee_name=name,
            attendee_email=candidate.email,
            cancel=kind == "booking_cancelled",
        ),
    }
    message = queue_message(
        org_id=org.id,
        kind=kind,
        template="slot_cancelled" if kind == "booking_cancelled" else "slot_moved",
        to_email=candidate.email,
        to_name=name,
        context=context,
        idempotency_key=f"{kind}:{booking.id}:{booking.sequence}",
    )
    message.candidate_id, message.invitation_id = candidate.id, booking.invitation_id
