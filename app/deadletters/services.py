"""Retry or discard failed messages. Nothing is dropped silently: a retry puts the same row (same
Message-ID, same links) back in the outbox with fresh retries; a discard keeps the row and says
who set it aside and why."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select, update

from app import clock
from app.audit import audit
from app.extensions import db
from app.invitations.lifecycle import revoke_open
from app.like import ESCAPE, contains
from app.mail.outbox import record_events
from app.models import (
    Campaign,
    Invitation,
    Message,
    MessageStatus,
    ProviderAccount,
    User,
)

PAGE = 200


class DeadLetterError(Exception):
    """A request about dead letters that cannot be done."""


@dataclass(frozen=True)
class Filters:
    """What the dead-letter page is narrowed to."""

    campaign_id: int | None = None
    provider: str | None = None  # "acct<id>", "default", or None for any
    error: str = ""

    @property
    def active(self) -> bool:
        return bool(self.campaign_id or self.provider or self.error)


def failed(org_id: int, filters: Filters) -> Select:
    """The failed messages of the org that match the filters, newest first."""
    query = select(Message).where(Message.org_id == org_id, Message.status == MessageStatus.FAILED)
    if filters.campaign_id:
        query = query.where(Message.campaign_id == filters.campaign_id)
    if filters.provider == "default":
        query = query.where(Message.provider_account_id.is_(None))
    elif filters.provider and filters.provider.startswith("acct"):
        digits = filters.provider[4:]
        account_id = (
            int(digits) if digits.isascii() and digits.isdecimal() and len(digits) < 10 else -1
        )
        query = query.where(Message.provider_account_id == account_id)
    if filters.error:
        pattern = contains(filters.error.strip()[:100])
        query = query.where(Message.last_error.ilike(pattern, escape=ESCAPE))
    return query.order_by(Message.id.desc())


def _chosen(org_id: int, ids: list[int] | None, filters: Filters | None) -> Select:
    query = failed(org_id, filters or Filters())
    if ids is not None:
        query = query.where(Message.id.in_(ids))
    return query.with_only_columns(Message.id).order_by(None)


def retry(org_id: int, user: User, ids: list[int] | None, filters: Filters | None) -> int:
    """Queue chosen failed messages again, with their retries reset. The caller commits, then
    wakes the dispatchers (on DeadLetterError it rolls back)."""
    chosen = _chosen(org_id, ids, filters).scalar_subquery()
    record_events(chosen, "retry_requested", {"by": user.name})
    count = db.session.execute(
        update(Message)
        .where(Message.id.in_(chosen))
        .values(
            status=MessageStatus.QUEUED,
            attempts=0,
            send_after=clock.now(),
            lease_until=None,
            lease_token=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not count:
        raise DeadLetterError("No failed emails matched; nothing was retried.")
    audit(org_id, user, "dead_letters.retried", messages=count)
    return count


def discard(org_id: int, user: User, ids: list[int], reason: str) -> int:
    """Set failed messages aside for good, keeping the row and the reason (the caller commits)."""
    reason = reason.strip()[:300]
    if not reason:
        raise DeadLetterError("Say why these emails are being discarded.")
    if not ids:
        raise DeadLetterError("Select the emails to discard.")
    chosen = _chosen(org_id, ids, None).scalar_subquery()
    # an invitation that never reached the candidate stops here: its link (never received)
    # closes, and no reminder goes out for it
    unsent = select(Message.invitation_id).where(
        Message.id.in_(chosen), Message.kind == "invitation", Message.invitation_id.is_not(None)
    )
    revoke_open(org_id, Invitation.id.in_(unsent.scalar_subquery()))
    record_events(chosen, "discarded", {"by": user.name, "reason": reason})
    count = db.session.execute(
        update(Message)
        .where(Message.id.in_(chosen))
        .values(status=MessageStatus.DISCARDED, last_error=Message.last_error)
        .execution_options(synchronize_session=False)
    ).rowcount
    audit(org_id, user, "dead_letters.discarded", messages=count, reason=reason)
    return count


def facets(org_id: int) -> dict:
    """Campaigns and providers that have failed messages, for the filter menus."""
    campaigns = db.session.execute(
        select(Campaign.id, Campaign.name, func.count(Message.id))
        .join(Message, Message.campaign_id == Campaign.id)
        .where(Message.org_id == org_id, Message.status == MessageStatus.FAILED)
        .group_by(Campaign.id, Campaign.name)
        .order_by(Campaign.name)
    ).all()
    accounts = db.session.execute(
        select(ProviderAccount.id, ProviderAccount.label).where(ProviderAccount.org_id == org_id)
    ).all()
    return {"campaigns": campaigns, "accounts": accounts}
