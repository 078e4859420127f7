"""Closing invitations: a revoked or superseded invitation's link stops working and no reminder
follows. Campaigns supersede at send time; candidates and dead letters revoke."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update

from app import clock
from app.extensions import db
from app.invitations import fixed_time
from app.models import Booking, Campaign, Invitation, InvitationStatus

REPLACEABLE = (InvitationStatus.PENDING, InvitationStatus.ACCEPTED, InvitationStatus.DECLINED)
_RELEASE = text("UPDATE interview_slots SET booked = booked - 1 WHERE id = :slot AND booked > 0")


def revoke_open(org_id: int, *where: Any) -> int:
    """Close the org's pending invitations matching `where`: their links stop working and no
    reminder follows; the token's encrypted copy goes too (nothing will ever open again)."""
    return db.session.execute(
        update(Invitation)
        .where(Invitation.org_id == org_id, Invitation.status == InvitationStatus.PENDING, *where)
        .values(status=InvitationStatus.REVOKED, token_encrypted=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def supersede_older(campaign: Campaign) -> None:
    """Once this campaign's invitations go out, older ones for the same candidates and job
    (open or answered: the recruiter chose to invite them again) are replaced: their links stop
    working, and an interview they had accepted or booked is taken off their calendar. Run at
    send time, so a scheduled or cancelled campaign takes nothing."""
    older = (
        Invitation.org_id == campaign.org_id,
        Invitation.job_id == campaign.job_id,
        Invitation.status.in_(REPLACEABLE),
        Invitation.campaign_id != campaign.id,
        Invitation.candidate_id.in_(
            select(Invitation.candidate_id).where(Invitation.campaign_id == campaign.id)
        ),
    )
    accepted = db.session.scalars(
        select(Invitation).where(*older, Invitation.status == InvitationStatus.ACCEPTED)
    ).all()
    for invitation in accepted:
        _off_the_calendar(invitation)
    db.session.execute(
        update(Invitation)
        .where(*older)
        .values(status=InvitationStatus.SUPERSEDED, token_encrypted=None)
        .execution_options(synchronize_session=False)
    )


def _off_the_calendar(invitation: Invitation) -> None:
    """CANCEL the accepted fixed time, or give the booked slot back and CANCEL it."""
    campaign = db.session.get(Campaign, invitation.campaign_id)
    booking = db.session.scalar(
        select(Booking).where(Booking.invitation_id == invitation.id, Booking.status == "active")
    )
    if booking is not None:
        db.session.execute(_RELEASE, {"slot": booking.slot_id})
        booking.status, booking.cancelled_at = "cancelled", clock.now()
        booking.sequence += 1
        at = fixed_time.booked_entry(booking)
    elif campaign.slot_starts_at is not None:
        invitation.ics_sequence += 1
        at = None
    else:
        return  # nothing was on a calendar
    fixed_time.notice(
        invitation,
        campaign,
        "interview_removed",
        reply_by=invitation.expires_at,
        why="replaced",
        at=at,
    )
