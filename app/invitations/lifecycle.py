"""Closing invitations: a revoked or superseded invitation's link stops working and no reminder
follows. Campaigns supersede at send time; candidates and dead letters revoke."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from app.extensions import db
from app.models import Campaign, Invitation, InvitationStatus


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
    """Once this campaign's invitations go out, older pending ones for the same candidates and
    job stop working (run at send time, so a scheduled or cancelled campaign takes nothing)."""
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.org_id == campaign.org_id,
            Invitation.job_id == campaign.job_id,
            Invitation.status == InvitationStatus.PENDING,
            Invitation.campaign_id != campaign.id,
            Invitation.candidate_id.in_(
                select(Invitation.candidate_id).where(Invitation.campaign_id == campaign.id)
            ),
        )
        .values(status=InvitationStatus.SUPERSEDED, token_encrypted=None)
    )
