"""Reminders before the interview (or the reply deadline): one row per invitation and offset,
written with the campaign, sent by a periodic job to candidates who have not answered, never
twice, none after an answer, an unsubscribe or a cancellation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from app import clock
from app.extensions import db
from app.mail.outbox import queue_message
from app.models import (
    Campaign,
    EmailTemplate,
    Invitation,
    Message,
    Organization,
    Reminder,
    Suppression,
    TemplateKind,
)

BUSINESS = (9, 17)  # local hours when business-hours-only reminders may go


def anchor(campaign: Campaign, expires_at: datetime) -> datetime:
    """What reminders count back from: the interview slot, else the reply deadline."""
    return campaign.slot_starts_at or expires_at


def due_times(
    org: Organization, campaign: Campaign, expires_at: datetime, zone: str
) -> list[tuple[str, datetime]]:
    """(kind, due) for each configured offset still ahead; business hours in the candidate's
    time zone when the org asks for it."""
    now, start = clock.now(), anchor(campaign, expires_at)
    result = []
    for minutes in sorted(set(org.reminder_offsets or []), reverse=True):
        due = start - timedelta(minutes=int(minutes))
        if org.reminders_business_hours:
            local = due.astimezone(ZoneInfo(zone))
            if local.hour < BUSINESS[0]:
                local = (local - timedelta(days=1)).replace(hour=BUSINESS[1], minute=0)
            elif local.hour >= BUSINESS[1]:
                local = local.replace(hour=BUSINESS[1] - 1, minute=0)
            due = local.astimezone(start.tzinfo)
        if due > now:
            result.append((f"t-{int(minutes)}m", due))
    return result


def rows_for(
    org: Organization, campaign: Campaign, invitation_id: int, expires_at: datetime, zone: str
) -> list[tuple]:
    """COPY rows for one invitation's reminders."""
    return [
        (org.id, invitation_id, kind, due, "pending")
        for kind, due in due_times(org, campaign, expires_at, zone)
    ]


def _template_for(org_id: int) -> EmailTemplate | None:
    query = (
        select(EmailTemplate)
        .where(
            EmailTemplate.org_id == org_id,
            EmailTemplate.kind == TemplateKind.REMINDER,
            EmailTemplate.deleted_at.is_(None),
        )
        .order_by(EmailTemplate.is_default.desc(), EmailTemplate.id)
    )
    return db.session.scalars(query).first()


def send_due(limit: int = 1000) -> dict[str, int]:
    """Queue due reminders (each once), cancel the ones that no longer apply."""
    now = clock.now()
    claimed = db.session.scalars(
        select(Reminder)
        .where(Reminder.status == "pending", Reminder.due_at <= now)
        .order_by(Reminder.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    counts = {"sent": 0, "cancelled": 0}
    for reminder in claimed:
        invitation = db.session.get(Invitation, reminder.invitation_id)
        campaign = db.session.get(Campaign, invitation.campaign_id)
        original = db.session.scalar(
            select(Message).where(
                Message.invitation_id == invitation.id, Message.kind != "reminder"
            )
        )
        template = _template_for(reminder.org_id)
        suppressed = original is not None and db.session.scalar(
            select(Suppression.id).where(
                Suppression.org_id == reminder.org_id, Suppression.email == original.to_email
            )
        )
        if (
            invitation.status != "pending"
            or campaign.status == "cancelled"
            or suppressed
            or original is None
            or template is None
            or invitation.expires_at <= now
        ):
            reminder.status = "cancelled"
            counts["cancelled"] += 1
            continue
        message = queue_message(
            org_id=reminder.org_id,
            kind="reminder",
            template="version",
            to_email=original.to_email,
            to_name=original.to_name,
            context=_reminder_context(original.context),
            idempotency_key=f"reminder:{reminder.id}",
        )
        message.template_version_id = template.current_version_id
        message.candidate_id, message.campaign_id = original.candidate_id, campaign.id
        message.invitation_id = invitation.id
        reminder.status, reminder.message_id = "sent", message.id
        counts["sent"] += 1
    db.session.commit()
    return counts


def _reminder_context(context: dict[str, Any]) -> dict[str, Any]:
    own = dict(context)
    unsubscribe = own.get("_unsubscribe")
    if unsubscribe:
        own["_unsubscribe"] = dict(unsubscribe, kind="reminder")
    return own


def reschedule(campaign: Campaign, org: Organization) -> int:
    """After the interview moved: pending reminders get their new times."""
    moved = 0
    for reminder in db.session.scalars(
        select(Reminder)
        .join(Invitation, Invitation.id == Reminder.invitation_id)
        .where(Invitation.campaign_id == campaign.id, Reminder.status == "pending")
    ):
        minutes = int(reminder.kind[2:-1])
        reminder.due_at = anchor(campaign, reminder_expiry(reminder)) - timedelta(minutes=minutes)
        moved += 1
    return moved


def reminder_expiry(reminder: Reminder) -> datetime:
    return db.session.get(Invitation, reminder.invitation_id).expires_at


def cancel_for(campaign: Campaign) -> None:
    db.session.execute(
        update(Reminder)
        .where(
            Reminder.status == "pending",
            Reminder.invitation_id.in_(
                select(Invitation.id).where(Invitation.campaign_id == campaign.id)
            ),
        )
        .values(status="cancelled")
    )
