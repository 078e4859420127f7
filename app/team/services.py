"""Team rules: who may invite, change roles or remove whom; invites are signed and single-use.
Nothing here commits: the route that calls it does."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app import clock
from app.audit import audit
from app.auth.services import AccountError, find_user, memberships_of, normalize_email
from app.extensions import db
from app.mail.links import LINKS, signed_link
from app.mail.outbox import queue_message
from app.mail.tokens import InvalidToken, unsign
from app.models import Membership, Organization, Role, TeamInvite, User
from app.tenancy import ALL_ORGS


class TeamError(Exception):
    """A team change that is not allowed; the message is shown to the user."""


class InviteUnusable(Exception):
    """An invite link that cannot be used; `gone` means it was real but expired or used."""

    def __init__(self, message: str, gone: bool) -> None:
        super().__init__(message)
        self.gone = gone


def _assignable(actor_role: Role, role: Role) -> None:
    """Only owners hand out or take away the owner role; admins manage the rest."""
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise TeamError("Only an owner can make someone an owner.")


def invite(
    org: Organization, actor: User, actor_role: Role, email: str, role: Role
) -> tuple[TeamInvite, bool]:
    """Create an invite and queue its email; an older pending invite to the address is revoked
    (the answer says whether one was)."""
    _assignable(actor_role, role)
    email = normalize_email(email)
    existing = find_user(email)
    if existing and any(m.org_id == org.id for m in memberships_of(existing)):
        raise TeamError("That person is already a member of this organization.")
    now = clock.now()
    replaced = False
    for old in db.session.scalars(
        select(TeamInvite).where(
            TeamInvite.org_id == org.id,
            TeamInvite.email == email,
            TeamInvite.accepted_at.is_(None),
            TeamInvite.revoked_at.is_(None),
        )
    ):
        old.revoked_at = now
        replaced = True
    max_age = current_app.config["TEAM_INVITE_MAX_AGE_SECONDS"]
    team_invite = TeamInvite(
        org_id=org.id,
        email=email,
        role=role,
        invited_by_id=actor.id,
        nonce=secrets.token_hex(16),
        expires_at=now + timedelta(seconds=max_age),
    )
    db.session.add(team_invite)
    db.session.flush()
    _send_invite(org, actor, team_invite)
    audit(org.id, actor, "invite.sent", invite_id=team_invite.id, role=role.value, email=email)
    return team_invite, replaced


def _send_invite(org: Organization, actor: User, team_invite: TeamInvite) -> None:
    link = signed_link("auth.join", "team-invite", {"i": team_invite.id, "n": team_invite.nonce})
    queue_message(
        org_id=org.id,
        kind="team_invite",
        template="team_invite",
        to_email=team_invite.email,
        context={
            "org": {"name": org.name},
            "inviter": {"name": actor.name},
            "role": team_invite.role,
            LINKS: {"accept_url": link},
            "expires_days": round(current_app.config["TEAM_INVITE_MAX_AGE_SECONDS"] / 86400),
        },
        created_by_id=actor.id,
    )


def resend(org: Organization, actor: User, actor_role: Role, team_invite: TeamInvite) -> None:
    """Send the invite again with a fresh expiry and a new link (the old link stops working)."""
    _assignable(actor_role, Role(team_invite.role))
    if not team_invite.is_pending:
        raise TeamError("This invite was already accepted or revoked.")
    team_invite.nonce = secrets.token_hex(16)
    max_age = current_app.config["TEAM_INVITE_MAX_AGE_SECONDS"]
    team_invite.expires_at = clock.now() + timedelta(seconds=max_age)
    _send_invite(org, actor, team_invite)
    audit(org.id, actor, "invite.resent", invite_id=team_invite.id)


def revoke(org: Organization, actor: User, actor_role: Role, team_invite: TeamInvite) -> None:
    """Stop an invite link from working."""
    _assignable(actor_role, Role(team_invite.role))
    if team_invite.is_pending:
        team_invite.revoked_at = clock.now()
        audit(org.id, actor, "invite.revoked", invite_id=team_invite.id)


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


def _owners(org_id: int) -> int:
    """How many owners the org has, locking them so two demotions cannot race past the last."""
    query = select(Membership).where(Membership.org_id == org_id, Membership.role == Role.OWNER)
    return len(db.session.scalars(query.with_for_update()).all())


def change_role(actor: User, actor_role: Role, membership: Membership, role: Role) -> None:
    """Change a teammate's role; the last owner stays an owner."""
    old = membership.role_enum
    if old == role:
        return
    _assignable(actor_role, role)
    _assignable(actor_role, old)
    if old == Role.OWNER and _owners(membership.org_id) <= 1:
        raise TeamError("Every organization needs an owner. Make someone else owner first.")
    membership.role = role
    audit(
        membership.org_id,
        actor,
        "member.role_changed",
        member=membership.user.name,
        old=old.value,
        new=role.value,
    )


def remove(actor: User, actor_role: Role, membership: Membership) -> None:
    """Remove a teammate from the org (their account stays)."""
    _assignable(actor_role, membership.role_enum)
    if membership.role_enum == Role.OWNER and _owners(membership.org_id) <= 1:
        if membership.user_id == actor.id:
            raise TeamError(
                "You can't leave: you are the last owner. Make someone else an owner first."
            )
        raise TeamError("You can't remove the last owner.")
    audit(
        membership.org_id,
        actor,
        "member.removed",
        member=membership.user.name,
        role=membership.role,
    )
    db.session.delete(membership)
