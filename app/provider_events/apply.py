"""Apply a provider's (or a DSN's) news about a message, once: delivered, bounced, complained,
unsubscribed. Events are keyed by the provider's event id, so a redelivery changes nothing.
Bounces and complaints feed the suppression list, and the campaign's sending health decides
whether it goes on (app.campaigns.health)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from app.campaigns.health import check_health
from app.extensions import db
from app.models import Event, Message, Organization
from app.suppressions.services import suppress
from app.tenancy import ALL_ORGS

KINDS = {"delivered", "bounced", "complained", "unsubscribed", "deferred"}


def _add_event(message: Message, kind: str, event_id: str, detail: dict, at: datetime) -> bool:
    """Insert the event unless this provider event id was applied before."""
    inserted = db.session.execute(
        insert(Event)
        .values(
            org_id=message.org_id,
            message_id=message.id,
            type=kind,
            detail=detail,
            created_at=at,
            provider_event_id=event_id,
        )
        .on_conflict_do_nothing(index_elements=["provider_event_id"])
        .returning(Event.id)
    ).scalar()
    return inserted is not None


def apply(message: Message, kind: str, event_id: str, detail: dict, at: datetime) -> bool:
    """Record and act on one event; False when it was already applied. No commit."""
    if kind not in KINDS:
        raise ValueError(kind)
    if kind == "delivered" and message.delivered_at is not None:
        detail = {**detail, "repeat": True}  # on the timeline, not counted twice
    if not _add_event(message, kind, event_id, detail, at):
        return False
    if kind == "delivered":
        message.delivered_at = message.delivered_at or at
        if message.delivery is None:
            message.delivery = "delivered"
    elif kind == "bounced":
        _bounce(message, detail.get("severity") == "permanent", detail, at)
    elif kind == "complained":
        message.complained_at = message.complained_at or at
        suppress(message.org_id, message.to_email, "complaint", ["all"], source="complaint")
        check_health(message.campaign_id)
    elif kind == "unsubscribed":
        suppress(message.org_id, message.to_email, "unsubscribed", ["all"], source="provider")
    return True


def _bounce(message: Message, hard: bool, detail: dict, at: datetime) -> None:
    message.bounced_at = message.bounced_at or at
    if hard:
        message.bounce_type = "hard"
        suppress(message.org_id, message.to_email, "hard_bounce", ["all"], source="bounce")
        check_health(message.campaign_id)
        return
    message.bounce_type = message.bounce_type or "soft"
    org = db.session.get(Organization, message.org_id)
    since = at - timedelta(days=org.soft_bounce_days)
    soft = db.session.scalar(
        select(func.count())
        .select_from(Event)
        .join(Message, Message.id == Event.message_id)
        .where(
            Event.org_id == message.org_id,
            Event.type == "bounced",
            Event.detail["severity"].astext == "temporary",
            Event.created_at >= since,
            Message.to_email == message.to_email,
        )
        .execution_options(**ALL_ORGS)
    )
    if soft >= org.soft_bounce_threshold:
        suppress(message.org_id, message.to_email, "soft_bounce", ["all"], source="soft bounces")
