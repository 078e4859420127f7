"""Unsubscribing by a signed token, whichever way it arrives: the one-click POST, the page's
preferences form, or a mail to the unsubscribe address. Nothing here commits: the caller does."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.mail.tokens import InvalidToken, unsign
from app.models import Event, Message, Organization
from app.suppressions.services import suppress
from app.tenancy import ALL_ORGS

UNSUBSCRIBE_MAX_AGE = 365 * 24 * 3600


def _message(message_id: object) -> Message | None:
    """The message a link was sent in: no org is logged in, the signed token already decided."""
    if not isinstance(message_id, int):
        return None
    query = select(Message).where(Message.id == message_id).execution_options(**ALL_ORGS)
    return db.session.scalar(query)


def unsubscribe_target(token: str) -> dict | None:
    """What a signed unsubscribe token names (org id "o", address "e", message "m", kind "k",
    and the org itself), or None for a bad, expired or orphaned token."""
    try:
        data = unsign("unsubscribe", token, max_age=UNSUBSCRIBE_MAX_AGE)
    except InvalidToken:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("o"), int)):
        return None
    if "e" not in data:  # the address comes from the message the link was sent in
        message = _message(data.get("m"))
        if message is None or message.org_id != data["o"]:
            return None
        data = dict(data, e=message.to_email)
    org = db.session.get(Organization, data["o"])
    return dict(data, org=org) if org is not None else None


def record_unsubscribe_event(target: dict, how: str, scope: str = "all") -> None:
    """On the timeline of the message the link came in (first time only)."""
    message = _message(target.get("m"))
    if message is None or message.org_id != target["o"]:
        return
    done = db.session.scalar(
        select(Event.id)
        .where(Event.message_id == message.id, Event.type == "unsubscribed")
        .execution_options(**ALL_ORGS)
    )
    if done is None:
        db.session.add(
            Event(
                org_id=message.org_id,
                message_id=message.id,
                type="unsubscribed",
                detail={"via": how, "scope": scope},
            )
        )


def unsubscribe_by_token(token: str, how: str) -> dict | None:
    """Suppress the address a signed unsubscribe token names (one-click POST, or by mail).
    Returns the target, or None for a bad token. The caller commits."""
    target = unsubscribe_target(token)
    if target is None:
        return None
    suppress(target["o"], str(target["e"]), "unsubscribed", ["all"], source=how)
    record_unsubscribe_event(target, how)
    return target
