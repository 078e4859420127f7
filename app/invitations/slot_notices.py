"""Mail that follows a slot's changes: calendar entries for the slot's interviewers (booked,
moved, cancelled), and the candidate's notice when the recruiter cancels their slot (with a link
to pick again). Queued in the caller's transaction (services never commit); the .ics is written
into the message context and built when the mail is sent, organised by the org's sender."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from sqlalchemy import select

from app.extensions import db
from app.invitations.zones import local_when
from app.mail.build import CALENDAR, ORG_MAIL
from app.models import (
    Booking,
    Campaign,
    Candidate,
    InterviewSlot,
    Job,
    Organization,
    SlotInterviewer,
)
from app.outbox.queue import queue_message
from app.tenancy import ALL_ORGS

Change = Literal["booked", "moved", "cancelled"]
_TITLES = {
    "booked": "Interview booked",
    "moved": "Interview moved",
    "cancelled": "Interview cancelled",
}
_NOTES = {
    "booked": "You interview {name} for {job}.",
    "moved": "You interview {name} for {job} at this new time.",
    "cancelled": "This time is no longer booked: the calendar entry is cancelled.",
}


def _row(model: Any, row_id: int) -> Any:
    """A row by id whatever the request's org (a candidate's page has no logged-in org)."""
    return db.session.scalar(select(model).where(model.id == row_id).execution_options(**ALL_ORGS))


def _interviewer_uid(booking: Booking, email: str) -> str:
    """Stable per booking (its uid survives moves) and interviewer: updates replace one entry."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]
    return f"iv-{digest}-{booking.uid}"


def _people(slot_id: int) -> list[SlotInterviewer]:
    return list(
        db.session.scalars(
            select(SlotInterviewer)
            .where(SlotInterviewer.slot_id == slot_id)
            .order_by(SlotInterviewer.id)
            .execution_options(**ALL_ORGS)
        )
    )


def _entry(uid: str, sequence: int, slot: InterviewSlot, summary: str, where: str, about: str,
           cancel: bool) -> dict[str, Any]:  # fmt: skip
    return {
        "uid": uid,
        "sequence": sequence,
        "starts_at": slot.starts_at.isoformat(),
        "ends_at": slot.ends_at.isoformat(),
        "summary": summary,
        "location": where,
        "description": about,
        "cancel": cancel,
    }


def interviewer_notices(
    booking: Booking, change: Change, previous_slot_id: int | None = None
) -> int:
    """Calendar mail to the interviewers of the booking's slot: REQUEST when booked or moved in,
    CANCEL when cancelled; on a move, those only in the previous slot get a CANCEL. Call with
    the booking as it now stands (its slot and sequence); returns how many mails were queued.
    A slot without interviewers costs one small query."""
    now_in = {p.email.strip().lower(): p for p in _people(booking.slot_id)}
    before = []
    if previous_slot_id is not None and previous_slot_id != booking.slot_id:
        before = [p for p in _people(previous_slot_id) if p.email.strip().lower() not in now_in]
    if before:
        previous = _row(InterviewSlot, previous_slot_id)
        for person in before:
            _queue(booking, previous, person, "cancelled")
    if now_in:
        slot = _row(InterviewSlot, booking.slot_id)
        for person in now_in.values():
            _queue(booking, slot, person, change)
    return len(before) + len(now_in)


def _queue(booking: Booking, slot: InterviewSlot, person: SlotInterviewer, change: Change) -> None:
    """One interviewer's mail with its calendar entry (times in the org's zone)."""
    org = _row(Organization, booking.org_id)
    job = _row(Job, _row(Campaign, booking.campaign_id).job_id)
    name = _row(Candidate, booking.candidate_id).full_name
    where = slot.location or job.location or ""
    context = {
        ORG_MAIL: True,
        "title": _TITLES[change],
        "note": _NOTES[change].format(name=name, job=job.title),
        "candidate": {"name": name},
        "job": {"title": job.title},
        "org": {"name": org.name},
        "interview": {
            "when": local_when(slot.starts_at, slot.ends_at, org.timezone),
            "location": where,
        },
        CALENDAR: _entry(
            _interviewer_uid(booking, person.email),
            booking.sequence,
            slot,
            f"Interview: {name} ({job.title})",
            where,
            f"{job.title} interview with {name}, booked through {org.name}.",
            change == "cancelled",
        ),
    }
    queue_message(
        org_id=org.id,
        kind="interviewer_invite",
        template="interviewer_invite",
        to_email=person.email,
        to_name=person.name,
        context=context,
        idempotency_key=f"interviewer:{booking.uid}:{booking.sequence}:{change}:{person.email}",
    )


def slot_cancelled(booking: Booking) -> None:
    """The candidate's mail when the recruiter cancels their slot: a CANCEL for the entry in
    their calendar (same UID, higher SEQUENCE) and a link to pick another time, in their zone."""
    org = _row(Organization, booking.org_id)
    job = _row(Job, _row(Campaign, booking.campaign_id).job_id)
    candidate = _row(Candidate, booking.candidate_id)
    slot = _row(InterviewSlot, booking.slot_id)
    where = slot.location or job.location or ""
    context = {
        ORG_MAIL: True,
        "_invitation": booking.invitation_id,
        "candidate": {"name": candidate.full_name, "first_name": candidate.first_name},
        "job": {"title": job.title},
        "org": {"name": org.name},
        "interview": {"when": local_when(slot.starts_at, slot.ends_at, booking.time_zone)},
        CALENDAR: _entry(
            booking.uid,
            booking.sequence,
            slot,
            f"Interview: {job.title} ({org.name})",
            where,
            f"{job.title} interview with {org.name}: cancelled by {org.name}.",
            True,
        ),
    }
    queue_message(
        org_id=org.id,
        kind="booking_cancelled",
        template="slot_cancelled",
        to_email=candidate.email,
        to_name=candidate.full_name,
        context=context,
        idempotency_key=f"booking_cancelled:{booking.uid}:{booking.sequence}",
        candidate_id=candidate.id,
        invitation_id=booking.invitation_id,
    )
