"""The follow-up after the interview: some hours after it ended (the campaign's setting), the
campaign's follow-up template goes to each candidate marked attended, once. The invitation's
followed_up_at is claimed in the same statement that finds it due, and the message's unique
idempotency key (follow_up:<invitation id>) would refuse a second one, so reruns and concurrent
runs never send twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import exists, false, func, select, update

from app import clock
from app.extensions import db
from app.mail.outbox import queue_message
from app.models import Booking, Campaign, EmailTemplate, InterviewSlot, Invitation, Message

BATCH = 500


def _ended_and_attended(campaign: Campaign) -> Any:
    """The condition on an invitation: marked attended, interview ended `hours` ago."""
    due = clock.now() - timedelta(hours=campaign.follow_up_hours)
    if campaign.scheduling == "slots":
        return exists().where(
            Booking.invitation_id == Invitation.id,
            Booking.status == "active",
            Booking.attended == "attended",
            InterviewSlot.id == Booking.slot_id,
            InterviewSlot.ends_at <= due,
        )
    if campaign.slot_ends_at is None or campaign.slot_ends_at > due:
        return false()
    return Invitation.attended == "attended"


def _claim(campaign: Campaign) -> list[int]:
    """Mark up to BATCH due invitations followed up; only the ids this run claimed come back."""
    due = (
        select(Invitation.id)
        .where(
            Invitation.campaign_id == campaign.id,
            Invitation.followed_up_at.is_(None),
            Invitation.status.in_(("pending", "accepted")),
            _ended_and_attended(campaign),
        )
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    return list(
        db.session.scalars(
            update(Invitation)
            .where(Invitation.id.in_(due.scalar_subquery()), Invitation.followed_up_at.is_(None))
            .values(followed_up_at=clock.now())
            .returning(Invitation.id)
            .execution_options(synchronize_session=False)
        )
    )


def _queue(campaign: Campaign, template: EmailTemplate, invitation_id: int) -> bool:
    """The follow-up, to the address and with the context of the invitation email."""
    original = db.session.scalar(
        select(Message)
        .where(Message.invitation_id == invitation_id)  # the invitation email, written first
        .order_by(Message.id)
        .limit(1)
    )
    if original is None:
        return False
    context = dict(original.context)
    if context.get("_unsubscribe"):
        context["_unsubscribe"] = dict(context["_unsubscribe"], kind="follow_up")
    message = queue_message(
        org_id=campaign.org_id,
        kind="follow_up",
        template="version",
        to_email=original.to_email,
        to_name=original.to_name,
        context=context,
        idempotency_key=f"follow_up:{invitation_id}",
    )
    message.template_version_id = template.current_version_id
    message.candidate_id, message.campaign_id = original.candidate_id, campaign.id
    message.invitation_id = invitation_id
    return True


def send_due() -> int:
    """Queue every follow-up now due; the caller commits. Returns how many were queued."""
    campaigns = db.session.scalars(
        select(Campaign)
        .join(EmailTemplate, EmailTemplate.id == Campaign.follow_up_template_id)
        .where(
            Campaign.status.in_(("sending", "sent")),
            EmailTemplate.deleted_at.is_(None),
            EmailTemplate.current_version_id.is_not(None),
        )
        .order_by(Campaign.id)
    ).all()
    queued = 0
    for campaign in campaigns:
        template = db.session.get(EmailTemplate, campaign.follow_up_template_id)
        for invitation_id in _claim(campaign):
            queued += _queue(campaign, template, invitation_id)
    return queued


def pending_count(campaign: Campaign) -> int:
    """Attended candidates whose follow-up has not gone yet (shown beside the setting)."""
    attended = (
        exists().where(
            Booking.invitation_id == Invitation.id,
            Booking.status == "active",
            Booking.attended == "attended",
        )
        if campaign.scheduling == "slots"
        else Invitation.attended == "attended"
    )
    return db.session.scalar(
        select(func.count()).where(
            Invitation.campaign_id == campaign.id,
            Invitation.followed_up_at.is_(None),
            attended,
        )
    )
