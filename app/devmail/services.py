"""Whose mail the dev mailbox shows: an organization's mail (found by its Message-ID in the
outbox) to that organization only. Herald's account mail (verification, password reset, team
invite) holds a link to an account, so it goes only to the person it was sent to and to the
person who sent it (the teammate who invited; for a reset or a verification, the same person);
mail Herald has no row for, only to its recipient."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.devmail.store import StoredMail
from app.extensions import db
from app.models import ACCOUNT_MAIL_KINDS, Message
from app.tenancy import ALL_ORGS


@dataclass(frozen=True)
class Reader:
    """The logged-in person: their id, address and the org they are working in."""

    user_id: int
    email: str
    org_id: int | None


def _rows(mails: list[StoredMail]) -> dict[str, tuple[int, str, int | None]]:
    """Message-ID → (org id, kind, sent by) of every mail that is an outbox row, in one query."""
    ids = {m.message_id for m in mails if m.message_id}
    if not ids:
        return {}
    rows = db.session.execute(
        select(Message.message_id, Message.org_id, Message.kind, Message.created_by_id)
        .where(Message.message_id.in_(ids))
        .execution_options(**ALL_ORGS)  # another org's mail must be known as such, not missed
    )
    return {mid: (org_id, kind, by) for mid, org_id, kind, by in rows}


def _to_reader(mail: StoredMail, reader: Reader) -> bool:
    recipients = {r.strip().lower() for r in mail.envelope_to}
    return recipients == {reader.email.strip().lower()}


def visible(mails: list[StoredMail], reader: Reader) -> list[StoredMail]:
    """The mails `reader` may read, in the order given."""
    rows = _rows(mails)
    shown = []
    for mail in mails:
        row = rows.get(mail.message_id or "")
        if row is None:
            allowed = _to_reader(mail, reader)
        elif row[1] in ACCOUNT_MAIL_KINDS:
            allowed = row[2] == reader.user_id or _to_reader(mail, reader)
        else:
            allowed = row[0] == reader.org_id
        if allowed:
            shown.append(mail)
    return shown
