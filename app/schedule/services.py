"""A campaign's slots as the recruiter changes them: add (one or generated), close, reopen,
cancel (its candidates told and asked to pick again), move one candidate to another slot.
Capacity is the database's: a move takes its place with the same guarded UPDATE as a booking.
Services never commit; the routes do, so a refusal leaves nothing half-written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update

from app import clock
from app.audit import audit
from app.extensions import db
from app.invitations import booking_mail
from app.invitations.slot_notices import interviewer_notices, slot_cancelled
from app.invitations.zones import local_when
from app.models import (
    Booking,
    BookingStatus,
    Campaign,
    InterviewSlot,
    Invitation,
    InvitationStatus,
    Membership,
    Organization,
    SlotInterviewer,
    SlotStatus,
    User,
)

MAX_CAPACITY = 500


class ScheduleError(Exception):
    """A schedule change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Outsider:
    """An interviewer who is not in Herald: a name and an email."""

    name: str
    email: str


@dataclass(frozen=True)
class SlotDetails:
    """What every slot of one add or generation shares."""

    capacity: int
    location: str
    teammate_ids: tuple[int, ...] = ()
    outsiders: tuple[Outsider, ...] = ()


def _interviewers(org: Organization, details: SlotDetails) -> list[tuple[int | None, str, str]]:
    """(user id, name, email) for each interviewer; teammates must belong to this org."""
    people: list[tuple[int | None, str, str]] = []
    if details.teammate_ids:
        members = db.session.execute(
            select(User.id, User.name, User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org.id, User.id.in_(details.teammate_ids))
        ).all()
        if len(members) != len(set(details.teammate_ids)):
            raise ScheduleError("Pick interviewers from your team's list.")
        people += [(m.id, m.name or m.email, m.email) for m in members]
    for person in details.outsiders:
        name = person.name.strip()
        try:
            email = validate_email(person.email.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ScheduleError(f"{person.email!r} is not an email address.") from exc
        if not name or len(name) > 200:
            raise ScheduleError("Give each outside interviewer a name (up to 200 characters).")
        people.append((None, name, email))
    return people


def _check(campaign: Campaign, details: SlotDetails, pairs: list[tuple[datetime, datetime]]):  # noqa: ANN202
    if campaign.scheduling != "slots":
        raise ScheduleError("This campaign has one interview time, not slots to pick from.")
    if campaign.status == "cancelled":
        raise ScheduleError("This campaign was cancelled.")
    if not 1 <= details.capacity <= MAX_CAPACITY:
        raise ScheduleError(f"Capacity is between 1 and {MAX_CAPACITY} candidates per slot.")
    if len(details.location) > 300:
        raise ScheduleError("The location or link is at most 300 characters.")
    if not pairs:
        raise ScheduleError("These windows make no slots: check the days and the dates.")
    now = clock.now()
    for starts_at, ends_at in pairs:
        if ends_at <= starts_at:
            raise ScheduleError("A slot must end after it starts.")
        if starts_at <= now:
            raise ScheduleError("A slot must start in the future.")


def add_slots(
    org: Organization,
    campaign: Campaign,
    user: User,
    pairs: list[tuple[datetime, datetime]],
    details: SlotDetails,
) -> list[InterviewSlot]:
    """Add slots (UTC start, end), each with the same capacity, place and interviewers."""
    _check(campaign, details, pairs)
    people = _interviewers(org, details)
    slots = []
    for starts_at, ends_at in pairs:
        slot = InterviewSlot(
            org_id=org.id,
            campaign_id=campaign.id,
            starts_at=starts_at,
            ends_at=ends_at,
            capacity=details.capacity,
            location=details.location.strip() or None,
            status=SlotStatus.OPEN,
        )
        slot.interviewers = [
            SlotInterviewer(org_id=org.id, user_id=uid, name=name, email=email)
            for uid, name, email in people
        ]
        slots.append(slot)
    db.session.add_all(slots)
    db.session.flush()
    audit(org.id, user, "campaign.slots_added", campaign=campaign.name, slots=len(slots))
    return slots


def overlaps(org: Organization, slot_ids: list[int]) -> list[str]:
    """Warnings: a teammate interviewing in one of these slots and, at the same time, in another
    slot anywhere in the org (cancelled slots aside)."""
    if not slot_ids:
        return []
    mine, other = SlotInterviewer.__table__.alias("mine"), SlotInterviewer.__table__.alias("o")
    a, b = InterviewSlot.__table__.alias("a"), InterviewSlot.__table__.alias("b")
    rows = db.session.execute(
        select(mine.c.name, a.c.starts_at, a.c.ends_at, b.c.starts_at.label("other"))
        .join(a, a.c.id == mine.c.slot_id)
        .join(other, (other.c.user_id == mine.c.user_id) & (other.c.slot_id != mine.c.slot_id))
        .join(b, b.c.id == other.c.slot_id)
        .where(
            mine.c.org_id == org.id,
            b.c.org_id == org.id,
            mine.c.slot_id.in_(slot_ids),
            mine.c.user_id.is_not(None),
            a.c.status != SlotStatus.CANCELLED,
            b.c.status != SlotStatus.CANCELLED,
            a.c.starts_at < b.c.ends_at,
            b.c.starts_at < a.c.ends_at,
        )
        .order_by(a.c.starts_at, mine.c.name)
    ).all()
    seen, warnings = set(), []
    for name, starts, ends, _ in rows:
        when = local_when(starts, ends, org.timezone)
        text = f"{name} interviews elsewhere in Herald at the same time as {when}."
        if text not in seen:
            seen.add(text)
            warnings.append(text)
    return warnings


def set_open(org: Organization, slot: InterviewSlot, user: User, is_open: bool) -> None:
    """Close a slot (no new bookings; those booked keep their place) or open it again."""
    if slot.status == SlotStatus.CANCELLED:
        raise ScheduleError("This slot was cancelled.")
    slot.status = SlotStatus.OPEN if is_open else SlotStatus.CLOSED
    audit(org.id, user, "campaign.slot_opened" if is_open else "campaign.slot_closed", slot=slot.id)


def _active(slot: InterviewSlot) -> list[Booking]:
    return list(
        db.session.scalars(
            select(Booking)
            .where(Booking.slot_id == slot.id, Booking.status == BookingStatus.ACTIVE)
            .order_by(Booking.id)
            .with_for_update()
        )
    )


def cancel_slot(org: Organization, slot: InterviewSlot, user: User) -> int:
    """Cancel a slot: each booked candidate gets a CANCEL and a link to pick again (their
    invitation is open again), each interviewer a CANCEL. Returns how many were booked."""
    booked = select(Booking.invitation_id).where(
        Booking.slot_id == slot.id, Booking.status == BookingStatus.ACTIVE
    )
    db.session.execute(  # invitations first, then the slot: the order a candidate's change locks
        select(Invitation.id)
        .where(Invitation.id.in_(booked))
        .order_by(Invitation.id)
        .with_for_update()
    ).all()
    locked = db.session.scalar(
        select(InterviewSlot).where(InterviewSlot.id == slot.id).with_for_update()
    )
    if locked.status == SlotStatus.CANCELLED:
        raise ScheduleError("This slot was already cancelled.")
    bookings = _active(locked)
    now = clock.now()
    for booking in bookings:
        booking.status, booking.cancelled_at = BookingStatus.CANCELLED, now
        booking.sequence += 1
        db.session.execute(
            update(Invitation)
            .where(Invitation.id == booking.invitation_id, Invitation.status == "accepted")
            .values(status=InvitationStatus.PENDING, responded_at=None)
        )
        slot_cancelled(booking)
        interviewer_notices(booking, "cancelled")
    locked.status, locked.booked = SlotStatus.CANCELLED, 0
    audit(org.id, user, "campaign.slot_cancelled", slot=slot.id, candidates=len(bookings))
    return len(bookings)


def move_booking(org: Organization, booking: Booking, target: InterviewSlot, user: User) -> Booking:
    """Move one candidate to another open slot of the same campaign, atomically: the new place
    is taken by the guarded UPDATE (refused when full) before anything else changes, then the
    booking is marked moved, its successor keeps the calendar UID with SEQUENCE + 1, and the old
    place is released, all in the caller's transaction. The recruiter is not held to the
    candidates' cutoff. The candidate gets the updated .ics; interviewers are told."""
    _lock_for_move(booking, target)
    _take_place(target)
    previous_id = booking.slot_id
    booking.status = BookingStatus.MOVED
    db.session.flush()  # the one-active-booking index is free for the successor
    moved = Booking(
        org_id=org.id,
        campaign_id=booking.campaign_id,
        slot_id=target.id,
        invitation_id=booking.invitation_id,
        candidate_id=booking.candidate_id,
        time_zone=booking.time_zone,
        uid=booking.uid,
        sequence=booking.sequence + 1,
    )
    db.session.add(moved)
    db.session.execute(
        update(InterviewSlot)
        .where(InterviewSlot.id == previous_id, InterviewSlot.booked > 0)
        .values(booked=InterviewSlot.booked - 1)
    )
    db.session.flush()
    booking_mail.confirmation(org, booking.invitation, moved, target, "booking_rescheduled")
    interviewer_notices(moved, "moved", previous_slot_id=previous_id)
    audit(org.id, user, "campaign.booking_moved", booking=moved.id, slot=target.id)
    return moved


def _lock_for_move(booking: Booking, target: InterviewSlot) -> None:
    """Lock the candidate's invitation (one change at a time, as their page does) and both
    slots in id order (as bookings lock them: no deadlock), then check the move still makes
    sense."""
    db.session.execute(
        select(Invitation.id).where(Invitation.id == booking.invitation_id).with_for_update()
    ).all()
    db.session.refresh(booking)
    if booking.status != BookingStatus.ACTIVE:
        raise ScheduleError("This booking was changed meanwhile: reload the schedule.")
    if target.campaign_id != booking.campaign_id:
        raise ScheduleError("Pick a slot of the same campaign.")
    if target.id == booking.slot_id:
        raise ScheduleError("The candidate is already in that slot.")
    ids = sorted({booking.slot_id, target.id})
    db.session.execute(
        select(InterviewSlot.id)
        .where(InterviewSlot.id.in_(ids))
        .order_by(InterviewSlot.id)
        .with_for_update()
    ).all()


def _take_place(target: InterviewSlot) -> None:
    """One place in the target slot, by the database's guarded counter, or a clear refusal."""
    taken = db.session.execute(
        update(InterviewSlot)
        .where(
            InterviewSlot.id == target.id,
            InterviewSlot.booked < InterviewSlot.capacity,
            InterviewSlot.status == SlotStatus.OPEN,
            InterviewSlot.starts_at > clock.now(),
        )
        .values(booked=InterviewSlot.booked + 1)
        .returning(InterviewSlot.id)
    ).first()
    if taken is None:
        raise ScheduleError("That slot is full, closed or already started: pick another one.")
