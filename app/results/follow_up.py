"""The follow-up after the interview: some hours after it ended (the campaign's setting), the
campaign's follow-up template goes to each candidate marked attended, once. Due invitations are
found through the attended marks (partial indexes hold only those), claimed by setting
followed_up_at in a guarded UPDATE, and the message's unique idempotency key
(follow_up:<invitation id>) would refuse a second one: reruns and concurrent runs never send
twice."""

from __future__ import annotations

from sqlalchemy import Select, func, select, update

from app import clock
from app.extensions import db
from app.models import Booking, Campaign, EmailTemplate, InterviewSlot, Invitation, Message
from app.outbox.queue import queue_message

BATCH = 500
LIVE = ("sending", "sent")  # a cancelled campaign sends no follow-up


def _campaigns_with_follow_up() -> Select:
    """Invitations of live campaigns that have a usable follow-up template."""
    return (
        select(Invitation.id)
        .join(Campaign, Campaign.id == Invitation.campaign_id)
        .join(EmailTemplate, EmailTemplate.id == Campaign.follow_up_template_id)
        .where(
            Campaign.status.in_(LIVE),
            EmailTemplate.deleted_at.is_(None),
            EmailTemplate.current_version_id.is_not(None),
            Invitation.followed_up_at.is_(None),
            Invitation.status.in_(("pending", "accepted")),
        )
    )


def _hours_after(ended) -> object:  # noqa: ANN001 - a column of interview end times
    return ended + func.make_interval(0, 0, 0, 0, Campaign.follow_up_hours) <= clock.now()


def _due() -> Select:
    """Attended, and the interview (fixed time, or the booked slot) ended `hours` ago."""
    fixed = _campaigns_with_follow_up().where(
        Campaign.scheduling != "slots",
        Invitation.attended == "attended",
        _hours_after(Campaign.slot_ends_at),
    )
    booked = (
        _campaigns_with_follow_up()
        .join(Booking, Booking.invitation_id == Invitation.id)
        .join(InterviewSlot, InterviewSlot.id == Booking.slot_id)
        .where(
            Campaign.scheduling == "slots",
            Booking.attended == "attended",
            Booking.status == "active",
            _hours_after(InterviewSlot.ends_at),
        )
    )
    return fixed.union_all(booked).limit(BATCH)


def _claim() -> list[tuple[int, int]]:
    """(invitation, campaign) ids this run claimed: followed_up_at set where still empty (a run
    at the same time claims the others, or none)."""
    due = list(db.session.scalars(_due()))
    if not due:
        return []
    return list(
        db.session.execute(
            update(Invitation)
            .where(Invitation.id.in_(due), Invitation.followed_up_at.is_(None))
            .values(followed_up_at=clock.now())
            .returning(Invitation.id, Invitation.campaign_id)
            .execution_options(synchronize_session=False)
        ).all()
    )


def _queue(campaign: Campaign, invitation_id: int) -> bool:
    """The follow-up, to the address and with the context of the invitation email."""
    original = db.session.scalar(
        select(Message)
        .where(Message.invitation_id == invitation_id)  # the invitation email, written first
        .order_by(Message.id)
        .limit(1)
    )
    if original is None:
        return False
    template = db.session.get(EmailTemplate, campaign.follow_up_template_id)
    context = dict(original.context)
    context.pop("_calendar", None)  # the interview's calendar entry went with the answer
    if context.get("_unsubscribe"):
        context["_unsubscribe"] = dict(context["_unsubscribe"], kind="follow_up")
    queue_message(
        org_id=campaign.org_id,
        kind="follow_up",
        template="version",
        to_email=original.to_email,
        to_name=original.to_name,
        context=context,
        idempotency_key=f"follow_up:{invitation_id}",
        template_version_id=template.current_version_id,
        candidate_id=original.candidate_id,
        campaign_id=campaign.id,
        invitation_id=invitation_id,
    )
    return True


def send_due() -> int:
    """Queue every follow-up now due (BATCH a run); the caller commits. Returns how many."""
    queued = 0
    for invitation_id, campaign_id in _claim():
        queued += _queue(db.session.get(Campaign, campaign_id), invitation_id)
    return queued


def pending_count(campaign: Campaign) -> int:
    """Attended candidates whose follow-up has not gone yet (shown beside the setting)."""
    if campaign.scheduling == "slots":
        attended = Invitation.id.in_(
            select(Booking.invitation_id).where(
                Booking.campaign_id == campaign.id,
                Booking.attended == "attended",
                Booking.status == "active",
            )
        )
    else:
        attended = Invitation.attended == "attended"
    return db.session.scalar(
        select(func.count()).where(
            Invitation.campaign_id == campaign.id,
            Invitation.followed_up_at.is_(None),
            attended,
        )
    )
