"""Candidates booking, moving and cancelling their place in an interview slot.

The database decides who gets a place: a slot's `booked` counter is raised by one guarded UPDATE
(`booked < capacity`, open, starting after the cutoff) and its CHECK keeps it within capacity; a
partial unique index keeps one active booking per candidate and campaign. Each change locks the
invitation first, so one candidate's clicks happen one after the other, and runs in a savepoint,
so a refusal leaves nothing half-written. The caller commits."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app import clock
from app.extensions import db
from app.invitations import booking_mail
from app.invitations.zones import UnknownZone, valid_zone
from app.models import (
    Booking,
    BookingStatus,
    Candidate,
    InterviewSlot,
    Invitation,
    InvitationStatus,
    Organization,
    SlotStatus,
)
from app.tenancy import ALL_ORGS

NOTE_MAX = 1000

_TAKE = text(
    """
    UPDATE interview_slots SET booked = booked + 1
    WHERE id = :slot AND org_id = :org AND campaign_id = :campaign
      AND booked < capacity AND status = 'open' AND starts_at > :cutoff
    RETURNING id
    """
)
_LOCK_TWO = text(
    "SELECT id FROM interview_slots WHERE id = ANY(:ids) AND org_id = :org ORDER BY id FOR UPDATE"
)
_RELEASE = text(
    "UPDATE interview_slots SET booked = booked - 1 WHERE id = :slot AND booked > 0 RETURNING id"
)


class BookingError(Exception):
    """A booking the candidate cannot make; `status` is the HTTP answer a page gives."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SlotNotOffered(BookingError):
    status = 404


class SlotUnavailable(BookingError):
    """Full, closed, cancelled, past or inside the cutoff."""


class AlreadyBooked(BookingError):
    """The candidate holds an active booking already (a replayed form, a second tab)."""


class NoBooking(BookingError):
    """Nothing to move or cancel."""


class ChangeClosed(BookingError):
    """Inside the cutoff: the booking can no longer be changed online."""


class BadTimeZone(BookingError):
    status = 400


class BadNote(BookingError):
    status = 400


def check_zone(name: str | None) -> str:
    """The zone name, or BadTimeZone with a message the page shows."""
    try:
        return valid_zone(name)
    except UnknownZone as exc:
        raise BadTimeZone(str(exc)) from exc


def cutoff(org: Organization) -> datetime:
    """Slots starting before this are neither offered nor changed online."""
    return clock.now() + timedelta(hours=org.reschedule_cutoff_hours)


def open_slots(org: Organization, campaign_id: int) -> list[InterviewSlot]:
    """The campaign's slots a candidate may book now: open, not full, after the cutoff."""
    return list(
        db.session.scalars(
            select(InterviewSlot)
            .where(
                InterviewSlot.org_id == org.id,
                InterviewSlot.campaign_id == campaign_id,
                InterviewSlot.status == SlotStatus.OPEN,
                InterviewSlot.booked < InterviewSlot.capacity,
                InterviewSlot.starts_at > cutoff(org),
            )
            .order_by(InterviewSlot.starts_at, InterviewSlot.id)
            .execution_options(**ALL_ORGS)
        )
    )


def active_booking(invitation: Invitation) -> Booking | None:
    """The invitation's current booking, if any."""
    return db.session.scalar(
        select(Booking)
        .where(Booking.invitation_id == invitation.id, Booking.status == BookingStatus.ACTIVE)
        .execution_options(**ALL_ORGS)
    )


def slot_of(booking: Booking) -> InterviewSlot:
    return db.session.scalar(
        select(InterviewSlot)
        .where(InterviewSlot.id == booking.slot_id)
        .execution_options(**ALL_ORGS)
    )


def locked(invitation: Invitation) -> Invitation:
    """The invitation row locked for this transaction, as it is now."""
    return db.session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation.id)
        .with_for_update()
        .execution_options(populate_existing=True, **ALL_ORGS)
    )


def book(org: Organization, invitation: Invitation, slot_id: int, time_zone: str) -> Booking:
    """A place in the slot for the invitation's candidate, and the confirmation with its .ics."""
    zone = check_zone(time_zone)
    invitation = locked(invitation)
    if active_booking(invitation) is not None:
        raise AlreadyBooked("You already have a booked time. Reschedule it instead.")
    booking = _take(org, invitation, slot_id, zone, _new_uid(org, invitation), 0)
    invitation.status, invitation.responded_at = InvitationStatus.ACCEPTED, clock.now()
    booking_mail.confirmation(org, booking, "booking_confirmation")
    return booking


def reschedule(org: Organization, invitation: Invitation, slot_id: int, time_zone: str) -> Booking:
    """Move the candidate's booking to another slot: the new place is taken and the old one
    released in one transaction; the calendar entry keeps its UID with SEQUENCE + 1."""
    zone = check_zone(time_zone)
    invitation = locked(invitation)
    old = _changeable(org, invitation)
    if old.slot_id == slot_id:
        raise SlotUnavailable("That is the time you already have.")
    # both slots locked in id order: two candidates swapping times cannot deadlock
    db.session.execute(_LOCK_TWO, {"ids": sorted({old.slot_id, slot_id}), "org": org.id})
    with db.session.begin_nested():
        old.status = BookingStatus.MOVED
        db.session.flush()
        booking = _take(org, invitation, slot_id, zone, old.uid, old.sequence + 1)
        db.session.execute(_RELEASE, {"slot": old.slot_id})
    invitation.responded_at = clock.now()
    booking_mail.confirmation(org, booking, "booking_rescheduled")
    return booking


def cancel(org: Organization, invitation: Invitation) -> Booking:
    """Give the place back; the candidate's calendar gets METHOD:CANCEL. The invitation is open
    again, so they may pick another time while it lasts."""
    invitation = locked(invitation)
    booking = _changeable(org, invitation)
    db.session.execute(_RELEASE, {"slot": booking.slot_id})
    booking.status, booking.cancelled_at = BookingStatus.CANCELLED, clock.now()
    booking.sequence += 1
    invitation.status, invitation.responded_at = InvitationStatus.PENDING, clock.now()
    booking_mail.confirmation(org, booking, "booking_cancelled")
    return booking


def no_slot_fits(org: Organization, invitation: Invitation, note: str) -> None:
    """Keep the candidate's "none of these times work" message and tell the recruiter."""
    note = " ".join((note or "").split())
    if not note:
        raise BadNote("Tell the recruiter which times would work for you.")
    if len(note) > NOTE_MAX:
        raise BadNote(f"Keep the message under {NOTE_MAX} characters.")
    invitation = locked(invitation)
    invitation.no_slot_fits_note = note
    booking_mail.no_slot_fits(org, invitation, note)


def _changeable(org: Organization, invitation: Invitation) -> Booking:
    """The active booking, if it may still be changed online (its slot starts after the cutoff)."""
    booking = active_booking(invitation)
    if booking is None:
        raise NoBooking("You have no booked time to change.")
    if slot_of(booking).starts_at <= cutoff(org):
        hours = org.reschedule_cutoff_hours
        raise ChangeClosed(
            f"Your interview starts in less than {hours} hours, so it can no longer be changed "
            f"here. Please contact {org.reply_to or org.name} directly."
        )
    return booking


def _take(
    org: Organization, invitation: Invitation, slot_id: int, zone: str, uid: str, sequence: int
) -> Booking:
    """The guarded UPDATE then the booking row, in a savepoint: refused, nothing stays."""
    try:
        with db.session.begin_nested():
            params = {
                "slot": slot_id,
                "org": org.id,
                "campaign": invitation.campaign_id,
                "cutoff": cutoff(org),
            }
            if db.session.execute(_TAKE, params).scalar() is None:
                raise _why_refused(org, invitation, slot_id)
            booking = Booking(
                org_id=org.id,
                campaign_id=invitation.campaign_id,
                slot_id=slot_id,
                invitation_id=invitation.id,
                candidate_id=invitation.candidate_id,
                time_zone=zone,
                uid=uid,
                sequence=sequence,
            )
            db.session.add(booking)
            db.session.flush()
    except IntegrityError as exc:  # the partial unique index: a booking from another client
        raise AlreadyBooked("You already have a booked time. Reschedule it instead.") from exc
    return booking


def _why_refused(org: Organization, invitation: Invitation, slot_id: int) -> BookingError:
    """A clear reason the guarded UPDATE took no place."""
    slot = db.session.scalar(
        select(InterviewSlot)
        .where(InterviewSlot.id == slot_id, InterviewSlot.org_id == org.id)
        .execution_options(**ALL_ORGS)
    )
    if slot is None or slot.campaign_id != invitation.campaign_id:
        return SlotNotOffered("That time is not offered for this interview.")
    if slot.status != SlotStatus.OPEN:
        return SlotUnavailable("That time is no longer offered. Please pick another one.")
    if slot.starts_at <= cutoff(org):
        return SlotUnavailable("That time is too soon to book now. Please pick a later one.")
    return SlotUnavailable("Someone just took the last place at that time. Please pick another.")


def _new_uid(org: Organization, invitation: Invitation) -> str:
    """A calendar UID no other event shares, kept across the booking's moves."""
    return f"booking-{invitation.id}-{secrets.token_hex(6)}@herald.org{org.id}"


def no_slot_fits_notes(org: Organization, campaign_id: int, limit: int = 50) -> list:
    """Candidates of the campaign who said no time fits, newest first: (candidate, note)."""
    return list(
        db.session.execute(
            select(Candidate, Invitation.no_slot_fits_note)
            .join(Candidate, Candidate.id == Invitation.candidate_id)
            .where(
                Invitation.org_id == org.id,
                Invitation.campaign_id == campaign_id,
                Invitation.no_slot_fits_note.is_not(None),
            )
            .order_by(Invitation.id.desc())
            .limit(limit)
        )
    )
