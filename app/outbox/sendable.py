"""When may a message go? The one definition of "sendable", in SQL, used by the claim, the begin
and the sweeper's count (transitions.py, sweep.py); Python only words the reason (why_not) and
applies the suppression rule to one row (blocks), as the audience count does."""

from __future__ import annotations

import functools

from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from app.extensions import db
from app.models import (
    BULK_KINDS,
    Campaign,
    Invitation,
    Lane,
    Message,
    MessageStatus,
    Suppression,
)

BULK = frozenset(str(k) for k in BULK_KINDS)  # one-click unsubscribe, per-candidate cap
# notices about a change (a calendar entry confirmed or removed included): they go even when a
# campaign stops
NOTICES = ("cancelled", "rescheduled", "booking_confirmation", "booking_cancelled")
CANDIDATE_KINDS = BULK | set(NOTICES)
CAMPAIGN_CANCELLED = "The campaign was cancelled."


def blocks(suppression: Suppression, kind: str, lane: str = Lane.BULK) -> bool:
    """Does this suppression hold back a message of this kind, in this lane? (as _suppressed
    says in SQL) Transactional mail to a candidate is held back only by a suppression of all
    email that is not an unsubscribe (a bounce, a complaint, a manual entry)."""
    if kind not in CANDIDATE_KINDS:
        return False
    scope = suppression.scope or ["all"]
    if lane == Lane.TRANSACTIONAL or kind not in BULK:
        return "all" in scope and suppression.reason != "unsubscribed"
    return "all" in scope or kind in scope


@functools.cache
def _suppressed() -> ColumnElement[bool]:
    """A suppression of the org blocks this message (blocks(), in SQL)."""
    everything = or_(
        func.coalesce(func.jsonb_array_length(Suppression.scope), 0) == 0,
        Suppression.scope.has_key("all"),
    )
    bulk = and_(Message.lane == Lane.BULK, Message.kind.in_(BULK))
    return and_(
        Message.kind.in_(CANDIDATE_KINDS),
        exists().where(
            Suppression.org_id == Message.org_id,
            Suppression.email == func.lower(func.trim(Message.to_email)),
            or_(
                and_(bulk, or_(everything, Suppression.scope.has_key(Message.kind))),
                and_(~bulk, everything, Suppression.reason != "unsubscribed"),
            ),
        ),
    )


def _campaign_is(status: str) -> ColumnElement[bool]:
    """The message's campaign has this status (a primary-key lookup per row)."""
    return exists().where(Campaign.id == Message.campaign_id, Campaign.status == status)


@functools.cache
def held() -> ColumnElement[bool]:
    """Waits without being sent or stopped: its campaign is paused."""
    return and_(Message.kind.not_in(NOTICES), _campaign_is("paused"))


def _reminder_ended() -> ColumnElement:
    """Answers after which a reminder is no longer wanted: an interview reminder stops on a
    decline or a cancelled booking (the invitation is open again), a nudge on any answer."""
    interview = Message.context["reminder"]["kind"].astext == "interview"
    return or_(
        and_(interview, Invitation.status.in_(["pending", "declined"])),
        and_(~func.coalesce(interview, False), Invitation.status.in_(["accepted", "declined"])),
    )


@functools.cache
def stopped() -> ColumnElement[bool]:
    """Must never go: campaign cancelled, invitation revoked or superseded (a reminder: also
    answered), or the address suppressed for this kind."""
    closed = exists().where(
        Invitation.id == Message.invitation_id,
        or_(
            Invitation.status.in_(["revoked", "superseded"]),
            and_(Message.kind == "reminder", _reminder_ended()),
        ),
    )
    by_campaign = and_(Message.kind.not_in(NOTICES), or_(_campaign_is("cancelled"), closed))
    return or_(by_campaign, _suppressed())


@functools.cache
def sendable() -> ColumnElement[bool]:
    """May this message go now? The one definition (claim, begin, sweeper); built once."""
    return and_(~held(), ~stopped())


def why_not(message: Message) -> tuple[str, str, dict]:
    """Words for a message the begin found not sendable: (status, event, detail)."""
    campaign = (  # as the rows are now, not as this session saw them
        db.session.get(Campaign, message.campaign_id, populate_existing=True)
        if message.campaign_id
        else None
    )
    if message.kind not in NOTICES and campaign is not None and campaign.status == "paused":
        return MessageStatus.QUEUED, "", {}
    email = message.to_email.strip().lower()
    found = db.session.scalars(
        select(Suppression).where(Suppression.org_id == message.org_id, Suppression.email == email)
    ).first()
    if found is not None and blocks(found, message.kind, message.lane):
        reason = {"reason": found.reason, "scope": found.scope}
        return MessageStatus.SUPPRESSED, "suppressed", reason
    if campaign is not None and campaign.status == "cancelled":
        return MessageStatus.CANCELLED, "cancelled", {"reason": CAMPAIGN_CANCELLED}
    invitation = (
        db.session.get(Invitation, message.invitation_id, populate_existing=True)
        if message.invitation_id
        else None
    )
    answer = invitation.status if invitation is not None else "closed"
    if answer == "pending":  # an interview reminder after the booking was cancelled
        return MessageStatus.CANCELLED, "cancelled", {"reason": "The booking was cancelled."}
    if answer in ("accepted", "declined"):
        return MessageStatus.CANCELLED, "cancelled", {"reason": f"The candidate already {answer}."}
    return MessageStatus.CANCELLED, "cancelled", {"reason": f"The invitation was {answer}."}
