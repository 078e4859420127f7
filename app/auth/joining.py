"""Joining an organization through a teammate's invite link: which invite a link points to,
and spending it on an account (once). Nothing here commits: the route that calls it does."""

from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import select

from app import clock
from app.audit import audit
from app.auth.services import AccountError
from app.extensions import db
from app.mail.tokens import InvalidToken, unsign
from app.models import Membership, TeamInvite, User
from app.tenancy import ALL_ORGS


class InviteUnusable(Exception):
    """An invite link that cannot be used; `gone` means it was real but expired or used."""

    def __init__(self, message: str, gone: bool) -> None:
        super().__init__(message)
        self.gone = gone


def resolve_invite(token: str) -> TeamInvite:
    """The invite a link points to, if it can still be used."""
    try:
        data = unsign(
            "team-invite", token, max_age=current_app.config["TEAM_INVITE_MAX_AGE_SECONDS"]
        )
    except InvalidToken as exc:
        if exc.expired:
            raise InviteUnusable("This invitation has expired. Ask for a new one.", True) from exc
        raise InviteUnusable("This invitation link is not valid.", False) from exc
    query = select(TeamInvite).where(TeamInvite.id == data.get("i")).execution_options(**ALL_ORGS)
    team_invite = db.session.scalar(query)
    if team_invite is None or not secrets.compare_digest(team_invite.nonce, str(data.get("n"))):
        raise InviteUnusable(
            "This invitation link is not valid (a newer one may have been sent).", True
        )
    if team_invite.accepted_at:
        raise InviteUnusable("This invitation was already used. Log in to continue.", True)
    if team_invite.revoked_at or team_invite.expires_at < clock.now():
        raise InviteUnusable(
            "This invitation was withdrawn or has expired. Ask for a new one.", True
        )
    return team_invite


def accept(team_invite: TeamInvite, user: User) -> Membership:
    """Add the user to the org with the invited role; the invite is spent (once, even in a race)."""
    locked = db.session.scalar(
        select(TeamInvite)
        .where(TeamInvite.id == team_invite.id)
        .with_for_update()
        .execution_options(populate_existing=True, **ALL_ORGS)
    )
    if locked is None or not locked.is_pending:
        raise InviteUnusable("This invitation was already used. Log in to continue.", True)
    if user.email != team_invite.email:
        raise AccountError("This invitation was sent to a different email address.")
    membership = Membership(org_id=team_invite.org_id, user_id=user.id, role=team_invite.role)
    db.session.add(membership)
    team_invite.accepted_at = clock.now()
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()  # the link proved they read that mailbox
    audit(
        team_invite.org_id, user, "invite.accepted", invite_id=team_invite.id, role=team_invite.role
    )
    return membership
