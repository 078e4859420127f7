"""Candidates booking, moving and cancelling their place in an interview slot.

The database decides who gets a place: a slot's `booked` counter is raised by one guarded UPDATE
(`booked < capacity`, open, starting after the cutoff) and its CHECK keeps it within capacity; a
partial unique index keeps one active booking per candidate and campaign. Each change locks the
invitation first, so one candidate's clicks happen one after the other, and runs in a savepoint,
so a refusal leaves nothing half-written. The caller commits."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app import clock
from app.extensions import db
from app.invitations import booking_mail
from app.invitations.slot_notices import interviewer_notices
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
    RETURNING id, starts_at, ends_at, location
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


class OutOfDate(BookingError):
    """The candidate's page showed another state of their booking (a replayed or old form)."""


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


def open_slots(org: Organization, campaign_id: int) -> list[Any]:
    """The campaign's slots a candidate may book now (open, not full, after the cutoff), as
    rows of id, starts_at and ends_at: a page lists hundreds, no ORM objects needed."""
    return list(
        db.session.execute(
            select(InterviewSlot.id, InterviewSlot.starts_at, InterviewSlot.ends_at)
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


def _locked(invitation: Invitation, expected: int | None) -> tuple[Invitation, Booking | None]:
    """The invitation row locked for this transaction, as it is now, and its active booking;
    OutOfDate when that booking is not the one the candidate's page showed (`expected`, 0 for
    none; None not to check)."""
    invitation = db.session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation.id)
        .with_for_update()
        .execution_options(populate_existing=True, **ALL_ORGS)
    )
    current = active_booking(invitation)
    if expected is not None and (current.id if current else 0) != expected:
        raise OutOfDate(
            "This page was out of date: your booking changed since it was opened. "
            "Here is where it stands now."
        )
    return invitation, current


def book(
    org: Organization,
    invitation: Invitation,
    slot_id: int,
    time_zone: str,
    expected: int | None = None,
) -> Booking:
    """A place in the slot for the invitation's candidate, and the confirmation with its .ics."""
    zone = check_zone(time_zone)
    invitation, current = _locked(invitation, expected)
    if current is not None:
        raise AlreadyBooked("You already have a booked time. Reschedule it instead.")
    if invitation.status == InvitationStatus.DECLINED:
        raise BookingError("You declined this invitation.")
    booking, slot = _take(org, invitation, slot_id, zone, _new_uid(org, invitation), 0)
    invitation.status, invitation.responded_at = InvitationStatus.ACCEPTED, clock.now()
    booking_mail.confirmation(org, invitation, booking, slot, "booking_confirmation")
    interviewer_notices(booking, "booked")
    return booking


def reschedule(
    org: Organization,
    invitation: Invitation,
    slot_id: int,
    time_zone: str,
    expected: int | None = None,
) -> Booking:
    """Move the candidate's booking to another slot: the new place is taken and the old one
    released in one transaction; the calendar entry keeps its UID with SEQUENCE + 1."""
    zone = check_zone(time_zone)
    invitation, current = _locked(invitation, expected)
    old, _ = _changeable(org, current)
    if old.slot_id == slot_id:
        raise SlotUnavailable("That is the time you already have.")
    # both slots locked in id order: two candidates swapping times cannot deadlock
    db.session.execute(_LOCK_TWO, {"ids": sorted({old.slot_id, slot_id}), "org": org.id})
    with db.session.begin_nested():
        old.status = BookingStatus.MOVED
        db.session.flush()
        booking, slot = _take(org, invitation, slot_id, zone, old.uid, old.sequence + 1)
        db.session.execute(_RELEASE, {"slot": old.slot_id})
    invitation.responded_at = clock.now()
    booking_mail.confirmation(org, invitation, booking, slot, "booking_rescheduled")
    interviewer_notices(booking, "moved", previous_slot_id=old.slot_id)
    return booking


def cancel(org: Organization, invitation: Invitation, expected: int | None = None) -> Booking:
    """Give the place back; the candidate's calendar gets METHOD:CANCEL. The invitation is open
    again, so they may pick another time while it lasts."""
    invitation, current = _locked(invitation, expected)
    booking, slot = _changeable(org, current)
    db.session.execute(_RELEASE, {"slot": booking.slot_id})
    booking.status, booking.cancelled_at = BookingStatus.CANCELLED, clock.now()
    booking.sequence += 1
    invitation.status, invitation.responded_at = InvitationStatus.PENDING, clock.now()
    booking_mail.confirmation(org, invitation, booking, slot, "booking_cancelled")
    interviewer_notices(booking, "cancelled")
    return booking


def no_slot_fits(org: Organization, invitation: Invitation, note: str) -> None:
    """Keep the candidate's "none of these times work" message and tell the recruiter."""
    note = " ".join((note or "").split())
    if not note:
        raise BadNote("Tell the recruiter which times would work for you.")
    if len(note) > NOTE_MAX:
        raise BadNote(f"Keep the message under {NOTE_MAX} characters.")
    invitation, _ = _locked(invitation, None)
    invitation.no_slot_fits_note = note
    booking_mail.no_slot_fits(org, invitation, note)


def _changeable(org: Organization, booking: Booking | None) -> tuple[Booking, InterviewSlot]:
    """The active booking and its slot, if it may still be changed online (the slot starts
    after the cutoff)."""
    if booking is None:
        raise NoBooking("You have no booked time to change.")
    slot = slot_of(booking)
    if slot.starts_at <= cutoff(org):
        hours = org.reschedule_cutoff_hours
        raise ChangeClosed(
            f"Your interview starts in less than {hours} hours, so it can no longer be changed "
            f"here. Please contact {org.reply_to or org.name} directly."
        )
    return booking, slot


def _take(
    org: Organization, invitation: Invitation, slot_id: int, zone: str, uid: str, sequence: int
) -> tuple[Booking, Any]:
    """The guarded UPDATE then the booking row, in a savepoint: refused, nothing stays. Returns
    the booking and the slot's times and place (as the UPDATE returned them)."""
    params = {
        "slot": slot_id,
        "org": org.id,
        "campaign": invitation.campaign_id,
        "cutoff": cutoff(org),
    }
    try:
        with db.session.begin_nested():
            slot = db.session.execute(_TAKE, params).first()
            if slot is None:
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
    return booking, slot


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
