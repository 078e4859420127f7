"""Accounts: sign-up, password checks, resets and email verification. Routes stay thin and
commit: nothing here does."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import clock, sessions
from app.extensions import db
from app.mail.links import LINKS, signed_link
from app.mail.outbox import queue_message
from app.mail.tokens import InvalidToken, unsign
from app.models import AuditEntry, Membership, Organization, Role, User

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")
MIN_PASSWORD = 10


class AccountError(Exception):
    """A user-facing problem with an account action; the message is shown as is."""


def normalize_email(raw: str) -> str:
    """Validated, lower-cased address; AccountError with a readable reason otherwise."""
    try:
        return validate_email(
            raw.strip(), check_deliverability=False, allow_smtputf8=False
        ).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(str(exc)) from exc


def hash_password(password: str) -> str:
    """argon2id hash."""
    return _hasher.hash(password)


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def authenticate(email: str, password: str) -> User | None:
    """The user if the password matches (same work whether or not the account exists); an
    outdated hash is replaced, for the caller to commit with the login."""
    user = find_user(email)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def create_org(name: str, owner: User, timezone: str = "UTC") -> Organization:
    """A new organization with `owner` as its owner (not committed)."""
    org = Organization(name=name.strip(), timezone=timezone)
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(org_id=org.id, user_id=owner.id, role=Role.OWNER))
    db.session.add(AuditEntry(org_id=org.id, actor_id=owner.id, action="org.created"))
    from app.templates_editor.services import create_defaults

    create_defaults(org, owner)
    return org


def sign_up(org_name: str, name: str, email: str, password: str) -> User:
    """Create the owner's account and their organization, and queue the verification mail. On
    AccountError the caller rolls back."""
    email = normalize_email(email)
    if find_user(email):
        raise AccountError("An account with this email already exists. Log in instead.")
    user = User(email=email, name=name.strip(), password_hash=hash_password(password))
    try:
        db.session.add(user)
        db.session.flush()
        org = create_org(org_name, user)
        send_verification(user, org)
    except IntegrityError as exc:  # the same address signed up in a parallel request
        raise AccountError("An account with this email already exists. Log in instead.") from exc
    return user


def memberships_of(user: User) -> list[Membership]:
    """All of a user's memberships, across organizations (explicitly not tenant-scoped)."""
    query = select(Membership).where(Membership.user_id == user.id).order_by(Membership.id)
    return list(db.session.scalars(query.execution_options(all_orgs=True)))


def send_verification(user: User, org: Organization) -> None:
    """Queue the 'confirm your email' mail (in the caller's transaction)."""
    link = signed_link("auth.verify", "verify-email", {"u": user.id, "e": user.email})
    queue_message(
        org_id=org.id,
        kind="verify_email",
        template="verify_email",
        to_email=user.email,
        to_name=user.name,
        context={"user": {"name": user.name}, LINKS: {"verify_url": link}},
        created_by_id=user.id,
    )


def verify_email(token: str) -> User:
    """Mark the address confirmed (the caller commits); links last 7 days."""
    try:
        data = unsign("verify-email", token, max_age=7 * 24 * 3600)
    except InvalidToken as exc:
        raise AccountError("This confirmation link is invalid or has expired.") from exc
    user = db.session.get(User, data.get("u"))
    if user is None or user.email != data.get("e"):
        raise AccountError("This confirmation link is invalid or has expired.")
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
    return user


def request_password_reset(email: str) -> None:
    """Queue a reset link if the account exists (the caller commits); say nothing either way."""
    user = find_user(email)
    memberships = memberships_of(user) if user else []
    if not memberships:
        return
    link = signed_link(
        "auth.reset", "password-reset", {"u": user.id, "f": user.credential_fingerprint}
    )
    queue_message(
        org_id=memberships[0].org_id,
        kind="password_reset",
        template="password_reset",
        to_email=user.email,
        to_name=user.name,
        context={"user": {"name": user.name}, LINKS: {"reset_url": link}},
        created_by_id=user.id,
    )


def user_for_reset(token: str) -> User:
    """The user a reset link is for; single use because it names the old password's fingerprint."""
    max_age = current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"]
    try:
        data = unsign("password-reset", token, max_age=max_age)
    except InvalidToken as exc:
        raise AccountError("This reset link is invalid or has expired. Ask for a new one.") from exc
    user = db.session.get(User, data.get("u"))
    if user is None or user.credential_fingerprint != data.get("f"):
        raise AccountError("This reset link was already used. Ask for a new one.")
    return user


def set_password(user: User, password: str, keep_session: str | None = None) -> None:
    """Store a new password and end every session of the user but `keep_session` (the browser
    that changed it). Not committed."""
    user.password_hash = hash_password(password)
    sessions.end_all(user, keep=keep_session)
