"""The mail a booking sends: the candidate's confirmation, move or cancel notice (each with its
calendar entry, in the zone they booked in), and the recruiter's "none of these times work".
Everything the mail says is written into the message now, so a retry builds the same mail."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from sqlalchemy import select

from app.extensions import db
from app.invitations.zones import local_when
from app.mail.build import CALENDAR, ORG_MAIL, entry_ics, sender_for
from app.mail.mime import split_address
from app.models import (
    Booking,
    Campaign,
    Candidate,
    InterviewSlot,
    Invitation,
    Job,
    Organization,
    User,
)
from app.outbox.queue import queue_message
from app.tenancy import ALL_ORGS

# candidate mail carrying the org's branding and sender (a built-in template, not a version)
CANDIDATE_KINDS = ("booking_confirmation", "booking_rescheduled", "booking_cancelled")


def _row(model: Any, row_id: int) -> Any:
    return db.session.scalar(select(model).where(model.id == row_id).execution_options(**ALL_ORGS))


def _entry(org: Organization, booking: Booking, slot: Any, job: Job, *, cancel: bool) -> dict:
    """The booking's calendar entry as the message keeps it: stable UID, current SEQUENCE."""
    return {
        "uid": booking.uid,
        "sequence": booking.sequence,
        "starts_at": slot.starts_at.isoformat(),
        "ends_at": slot.ends_at.isoformat(),
        "summary": f"Interview: {job.title} ({org.name})",
        "location": slot.location or job.location or "",
        "description": f"{job.interview_format}, "
        f"{local_when(slot.starts_at, slot.ends_at, booking.time_zone)}.",
        "cancel": cancel,
    }


def calendar_file(org: Organization, booking: Booking) -> bytes:
    """The .ics of the booking as it stands ("Add to calendar" on the confirmation page)."""
    slot = _row(InterviewSlot, booking.slot_id)
    candidate = _row(Candidate, booking.candidate_id)
    job = _row(Job, _row(Invitation, booking.invitation_id).job_id)
    name, address = split_address(sender_for(org)[0])
    return entry_ics(
        _entry(org, booking, slot, job, cancel=False),
        organizer=(name or org.name, address),
        attendee=(candidate.full_name, candidate.email),
    )


def confirmation(
    org: Organization, invitation: Invitation, booking: Booking, slot: Any, kind: str
) -> None:
    """Queue the candidate's mail for this change of their booking, with its .ics (`slot`:
    anything with the slot's starts_at, ends_at and location)."""
    candidate, job = db.session.execute(
        select(Candidate, Job)
        .join(Job, Job.id == invitation.job_id)  # two rows by id, read in one round trip
        .where(Candidate.id == booking.candidate_id)
        .execution_options(**ALL_ORGS)
    ).one()
    where = slot.location or job.location or ""
    context = {
        ORG_MAIL: True,
        "_invitation": invitation.id,
        "candidate": {"name": candidate.full_name, "first_name": candidate.first_name},
        "org": {"name": org.name, "reply_to": org.reply_to},
        "job": {"title": job.title},
        "interview": {
            "when": local_when(slot.starts_at, slot.ends_at, booking.time_zone),
            "zone": booking.time_zone,
            "location": where,
            "is_link": where.startswith(("https://", "http://")) and " " not in where,
            "format": job.interview_format,
        },
        "cutoff_hours": org.reschedule_cutoff_hours,
        CALENDAR: _entry(org, booking, slot, job, cancel=kind == "booking_cancelled"),
    }
    queue_message(
        org_id=org.id,
        kind=kind,
        template=kind,
        to_email=candidate.email,
        to_name=candidate.full_name,
        context=context,
        idempotency_key=f"{kind}:{booking.uid}:{booking.sequence}",
        candidate_id=candidate.id,
        invitation_id=invitation.id,
    )


def no_slot_fits(org: Organization, invitation: Invitation, note: str) -> None:
    """Email the campaign's creator the candidate's message (as answers are told)."""
    campaign = _row(Campaign, invitation.campaign_id)
    recruiter = db.session.get(User, campaign.created_by_id) if campaign.created_by_id else None
    if recruiter is None:
        return
    candidate = _row(Candidate, invitation.candidate_id)
    job = _row(Job, invitation.job_id)
    queue_message(
        org_id=org.id,
        kind="no_slot_fits",
        template="no_slot_fits",
        to_email=recruiter.email,
        to_name=recruiter.name,
        context={
            "candidate": {"name": candidate.full_name, "email": candidate.email},
            "job": {"title": job.title},
            "note": note,
            "campaign": {
                "name": campaign.name,
                "url": current_app.config["PUBLIC_BASE_URL"]
                + url_for("campaigns.show", campaign_id=campaign.id),
            },
        },
        created_by_id=recruiter.id,
    )
