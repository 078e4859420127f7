"""A fixed interview time on the candidate's calendar: the entry (stable UID per invitation,
SEQUENCE from the invitation) and the notices that carry it, the confirmation after accepting
and the CANCEL after declining or being replaced. Everything the mail says is written into the
message when queued, so a retry builds the same mail. The caller commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.invitations.zones import local_when, zone_or
from app.mail.build import CALENDAR, ORG_MAIL
from app.mail.outbox import queue_message
from app.models import Campaign, Candidate, Invitation, Job, Message, Organization
from app.tenancy import ALL_ORGS


def _row(model: Any, row_id: int) -> Any:
    return db.session.scalar(select(model).where(model.id == row_id).execution_options(**ALL_ORGS))


def entry(
    org: Organization, campaign: Campaign, job: Job, invitation_id: int, sequence: int, **kw: Any
) -> dict[str, Any]:
    """The calendar entry of the campaign's interview for one invitation (`zone` names the
    time in the description; `cancel` takes it off the calendar)."""
    return {
        "uid": f"invitation-{invitation_id}@herald.org{org.id}",
        "sequence": sequence,
        "starts_at": campaign.slot_starts_at.isoformat(),
        "ends_at": campaign.slot_ends_at.isoformat(),
        "summary": f"Interview: {job.title} ({org.name})",
        "location": campaign.location or job.location or "",
        "description": f"{job.interview_format}, "
        f"{local_when(campaign.slot_starts_at, campaign.slot_ends_at, kw.get('zone') or 'UTC')}.",
        "cancel": bool(kw.get("cancel")),
    }


def notice(
    invitation: Invitation, campaign: Campaign, template: str, *, reply_by: Any, why: str = ""
) -> Message:
    """Queue 'interview_confirmed' (REQUEST) or 'interview_removed' (CANCEL) to the candidate,
    in the org's branding and from its sender, with the calendar entry."""
    org = _row(Organization, invitation.org_id)
    candidate = _row(Candidate, invitation.candidate_id)
    job = _row(Job, campaign.job_id)
    zone = zone_or(candidate.timezone, org.timezone)
    where = campaign.location or job.location or ""
    cancel = template == "interview_removed"
    context: dict[str, Any] = {
        ORG_MAIL: True,
        "candidate": {"name": candidate.full_name, "first_name": candidate.first_name},
        "org": {"name": org.name, "reply_to": org.reply_to},
        "job": {"title": job.title},
        "interview": {
            "when": local_when(campaign.slot_starts_at, campaign.slot_ends_at, zone),
            "zone": zone,
            "location": where,
            "is_link": where.startswith(("https://", "http://")) and " " not in where,
            "format": job.interview_format,
        },
        "reply_by": local_when(reply_by, reply_by, zone).split("–")[0],
        "why": why,
        CALENDAR: entry(
            org, campaign, job, invitation.id, invitation.ics_sequence, zone=zone, cancel=cancel
        ),
    }
    if why != "replaced":  # a replaced invitation's link no longer opens
        context["_invitation"] = invitation.id
    kind = "booking_cancelled" if cancel else "booking_confirmation"
    message = queue_message(
        org_id=org.id,
        kind=kind,
        template=template,
        to_email=candidate.email,
        to_name=candidate.full_name,
        context=context,
        idempotency_key=f"{kind}:invitation-{invitation.id}:{invitation.ics_sequence}",
    )
    message.candidate_id, message.campaign_id = candidate.id, campaign.id
    message.invitation_id = invitation.id
    return message
