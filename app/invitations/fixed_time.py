"""An interview on the candidate's calendar, for Herald's own notices: the confirmation after
accepting a fixed time, and the CANCEL after declining it or after the invitation is replaced
by a newer one (a booked slot's entry included). The entry keeps a stable UID (per invitation,
or the booking's) and its SEQUENCE. Everything the mail says is written into the message when
queued, so a retry builds the same mail. The caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.invitations.zones import local_when, zone_or
from app.mail.build import CALENDAR, ORG_MAIL
from app.models import Booking, Campaign, Candidate, InterviewSlot, Invitation, Job, Organization
from app.outbox.queue import queue_message
from app.tenancy import ALL_ORGS


@dataclass(frozen=True)
class Entry:
    """What the calendar holds: when, where, in which zone, under which UID and SEQUENCE."""

    starts_at: datetime
    ends_at: datetime
    location: str
    zone: str
    uid: str
    sequence: int


def _row(model: Any, row_id: int) -> Any:
    return db.session.scalar(select(model).where(model.id == row_id).execution_options(**ALL_ORGS))


def entry(
    org: Organization, campaign: Campaign, job: Job, invitation_id: int, sequence: int, **kw: Any
) -> dict[str, Any]:
    """The calendar entry of the campaign's fixed time for one invitation (`zone` names the
    time in the description; `cancel` takes it off the calendar)."""
    fixed = Entry(
        campaign.slot_starts_at,
        campaign.slot_ends_at,
        campaign.location or job.location or "",
        kw.get("zone") or "UTC",
        f"invitation-{invitation_id}@herald.org{org.id}",
        sequence,
    )
    return _spec(org, job, fixed, bool(kw.get("cancel")))


def _spec(org: Organization, job: Job, at: Entry, cancel: bool) -> dict[str, Any]:
    return {
        "uid": at.uid,
        "sequence": at.sequence,
        "starts_at": at.starts_at.isoformat(),
        "ends_at": at.ends_at.isoformat(),
        "summary": f"Interview: {job.title} ({org.name})",
        "location": at.location,
        "description": f"{job.interview_format}, {local_when(at.starts_at, at.ends_at, at.zone)}.",
        "cancel": cancel,
    }


def booked_entry(booking: Booking) -> Entry:
    """A booking's entry (its slot, the zone it was booked in, its UID and SEQUENCE)."""
    slot = _row(InterviewSlot, booking.slot_id)
    job = _row(Job, _row(Campaign, booking.campaign_id).job_id)
    where = slot.location or job.location or ""
    return Entry(
        slot.starts_at, slot.ends_at, where, booking.time_zone, booking.uid, booking.sequence
    )


def notice(
    invitation: Invitation,
    campaign: Campaign,
    template: str,
    *,
    reply_by: datetime,
    why: str = "",
    at: Entry | None = None,
) -> None:
    """Queue 'interview_confirmed' (REQUEST) or 'interview_removed' (CANCEL) to the candidate,
    in the org's branding and from its sender, with the calendar entry (the campaign's fixed
    time unless `at` names another)."""
    org = _row(Organization, invitation.org_id)
    candidate = _row(Candidate, invitation.candidate_id)
    job = _row(Job, campaign.job_id)
    zone = zone_or(candidate.timezone, org.timezone)
    at = at or Entry(
        campaign.slot_starts_at,
        campaign.slot_ends_at,
        campaign.location or job.location or "",
        zone,
        f"invitation-{invitation.id}@herald.org{org.id}",
        invitation.ics_sequence,
    )
    cancel = template == "interview_removed"
    context: dict[str, Any] = {
        ORG_MAIL: True,
        "candidate": {"name": candidate.full_name, "first_name": candidate.first_name},
        "org": {"name": org.name, "reply_to": org.reply_to},
        "job": {"title": job.title},
        "interview": {
            "when": local_when(at.starts_at, at.ends_at, at.zone),
            "zone": at.zone,
            "location": at.location,
            "is_link": at.location.startswith(("https://", "http://")) and " " not in at.location,
            "format": job.interview_format,
        },
        "reply_by": local_when(reply_by, reply_by, at.zone).split("–")[0],
        "why": why,
        CALENDAR: _spec(org, job, at, cancel),
    }
    if why != "replaced":  # a replaced invitation's link no longer opens
        context["_invitation"] = invitation.id
    kind = "booking_cancelled" if cancel else "booking_confirmation"
    queue_message(
        org_id=org.id,
        kind=kind,
        template=template,
        to_email=candidate.email,
        to_name=candidate.full_name,
        context=context,
        idempotency_key=f"{kind}:{at.uid}:{at.sequence}",
        candidate_id=candidate.id,
        campaign_id=campaign.id,
        invitation_id=invitation.id,
    )
