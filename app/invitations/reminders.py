"""Reminders before the interview (or the reply deadline), computed when due rather than written
with the campaign: for each offset, pending invitations whose anchor (the campaign's slot, else
the invitation's expiry) is that close get one reminder row (unique per invitation and offset:
never twice) and a queued mail. Moving the interview moves them, since the anchor is read at
send time; answered, revoked, expired, unsubscribed or cancelled invitations get none."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import clock
from app.extensions import db
from app.models import (
    Campaign,
    Candidate,
    EmailTemplate,
    Invitation,
    Message,
    Organization,
    Reminder,
    Suppression,
    TemplateKind,
    default_template,
)
from app.outbox.queue import queue_message

BUSINESS = (9, 17)  # local hours when business-hours-only reminders may go
BATCH = 1000


def _template_for(org_id: int) -> EmailTemplate | None:
    return default_template(org_id, TemplateKind.REMINDER)


def _in_business_hours(zone: str | None, default: str) -> bool:
    try:
        hour = clock.now().astimezone(ZoneInfo(zone or default)).hour
    except (KeyError, ValueError):
        hour = clock.now().hour
    return BUSINESS[0] <= hour < BUSINESS[1]


def _due(org: Organization, campaign: Campaign, minutes: int) -> list[Any]:
    """Pending invitations of the campaign inside this offset's window, not yet reminded."""
    now = clock.now()
    anchor = func.coalesce(campaign.slot_starts_at, Invitation.expires_at)
    already = select(Reminder.id).where(
        Reminder.invitation_id == Invitation.id, Reminder.kind == f"t-{minutes}m"
    )
    suppressed = select(Suppression.id).where(
        Suppression.org_id == org.id, Suppression.email == Candidate.email
    )
    query = (
        select(Invitation.id, Invitation.candidate_id, Candidate.timezone)
        .join(Candidate, Candidate.id == Invitation.candidate_id)
        .where(
            Invitation.campaign_id == campaign.id,
            Invitation.status == "pending",
            Invitation.expires_at > now,
            anchor > now,
            anchor - timedelta(minutes=minutes) <= now,
            ~already.exists(),
            ~suppressed.exists(),
        )
        .limit(BATCH)
    )
    return list(db.session.execute(query))


def send_due() -> dict[str, int]:
    """Queue every reminder now due (each exactly once); the caller commits."""
    counts = {"sent": 0}
    campaigns = db.session.scalars(select(Campaign).where(Campaign.status.in_(["sending", "sent"])))
    for campaign in campaigns:
        org = db.session.get(Organization, campaign.org_id)
        template = _template_for(org.id)
        if template is None:
            continue
        for minutes in sorted({int(m) for m in org.reminder_offsets or []}):
            for row in _due(org, campaign, minutes):
                if org.reminders_business_hours and not _in_business_hours(
                    row.timezone, org.timezone
                ):
                    continue
                if _remind(org, campaign, template, row.id, f"t-{minutes}m"):
                    counts["sent"] += 1
    return counts


def _remind(
    org: Organization, campaign: Campaign, template: EmailTemplate, invitation_id: int, kind: str
) -> bool:
    """Claim the (invitation, kind) row, then queue the mail with the same personal link."""
    claimed = db.session.execute(
        pg_insert(Reminder)
        .values(
            org_id=org.id, invitation_id=invitation_id, kind=kind, due_at=clock.now(), status="sent"
        )
        .on_conflict_do_nothing(index_elements=["invitation_id", "kind"])
        .returning(Reminder.id)
    ).scalar()
    if claimed is None:
        return False  # another scheduler run got it first
    original = db.session.scalar(
        select(Message).where(
            and_(Message.invitation_id == invitation_id, Message.kind != "reminder")
        )
    )
    if original is None:
        return False
    context = dict(original.context)
    if context.get("_unsubscribe"):
        context["_unsubscribe"] = dict(context["_unsubscribe"], kind="reminder")
    message = queue_message(
        org_id=org.id,
        kind="reminder",
        template="version",
        to_email=original.to_email,
        to_name=original.to_name,
        context=context,
        idempotency_key=f"reminder:{claimed}",
    )
    message.template_version_id = template.current_version_id
    message.candidate_id, message.campaign_id = original.candidate_id, campaign.id
    message.invitation_id = invitation_id
    db.session.get(Reminder, claimed).message_id = message.id
    return True
