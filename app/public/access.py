"""What every candidate page shares: the per-IP budget, the live invitation behind a token,
tenant rows read across orgs (the token already decided), and the one 'not found' page."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app import clock, limits
from app.extensions import db
from app.invitations.tokens import digest, well_formed
from app.models import Invitation, InvitationStatus
from app.tenancy import ALL_ORGS


def rate_limit() -> None:
    """Per-IP budget for the public pages (token guessing gets nowhere fast)."""
    limits.hit(
        "public",
        request.remote_addr or "?",
        current_app.config["INVITE_RATE_PER_MINUTE"],
        60,
        "Too many requests. Wait a minute and try again.",
    )


def row(model: Any, row_id: int | None) -> Any:
    """A tenant row by id on a public page: no org is logged in, the token already decided."""
    if row_id is None:
        return None
    return db.session.scalar(select(model).where(model.id == row_id).execution_options(**ALL_ORGS))


def gone() -> ResponseReturnValue:
    return render_template("public/not_found.html"), 404


def live_invitation(token: str) -> Invitation | None:
    """The live invitation for a token (pending, accepted or declined, not expired)."""
    if not well_formed(token):
        return None
    invitation = db.session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == digest(token))
        .execution_options(**ALL_ORGS)
    )
    if invitation is None or invitation.status in (
        InvitationStatus.REVOKED,
        InvitationStatus.SUPERSEDED,
    ):
        return None
    if invitation.status == InvitationStatus.PENDING and invitation.expires_at < clock.now():
        return None
    return invitation
