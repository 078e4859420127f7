"""Overview rules: the test email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.mail.outbox import queue_message
from app.models import Message, Organization, User


def send_test_email(org: Organization, user: User) -> Message:
    """Queue a test email to this user through the real pipeline (the caller commits)."""
    message = queue_message(
        org_id=org.id,
        kind="test",
        template="test_email",
        to_email=user.email,
        to_name=user.name,
        context={
            "org": {"name": org.name},
            "user": {"name": user.name},
            "requested_at": _day_month(clock.now().astimezone(ZoneInfo(org.timezone))),
        },
        created_by_id=user.id,
    )
    return message


PAGE = 25


@dataclass
class RecentPage:
    """One page of the Overview's emails, newest first, and the ids its links start from."""

    messages: list[Message]
    newer: int | None = None  # ?after=: the page just newer than this one
    older: int | None = None  # ?before=: the page just older


def recent(
    org_id: int, before: int | None = None, after: int | None = None, size: int = PAGE
) -> RecentPage:
    """A page of the org's emails by id (keyset: a page stays put while new mail arrives)."""
    mine = select(Message).where(Message.org_id == org_id)
    if after is not None:
        rows = db.session.scalars(
            mine.where(Message.id > after).order_by(Message.id).limit(size + 1)
        ).all()
        if len(rows) > size:  # newer mail beyond these: a page in between
            rows = rows[:size][::-1]
            return RecentPage(rows, newer=rows[0].id, older=rows[-1].id)
        before = None  # these reach the newest: the first page
    query = mine.order_by(Message.id.desc()).limit(size + 1)
    rows = db.session.scalars(query.where(Message.id < before) if before else query).all()
    if before and not rows:  # past the end: the first page
        return recent(org_id, size=size)
    return RecentPage(
        rows[:size],
        newer=rows[0].id if before else None,
        older=rows[size - 1].id if len(rows) > size else None,
    )


def find_messages(org_id: int, q: str, limit: int = 100) -> list:
    """Messages to an address (exact, case-insensitive) or with a Message-ID (with or without
    angle brackets), newest first."""
    from sqlalchemy import func, or_, select

    from app.models import Message

    needle = q.strip()
    mid = needle if needle.startswith("<") else f"<{needle}>"
    return db.session.scalars(
        select(Message)
        .where(
            Message.org_id == org_id,
            or_(func.lower(Message.to_email) == needle.lower(), Message.message_id == mid),
        )
        .order_by(Message.id.desc())
        .limit(limit)
    ).all()


def _day_month(moment: datetime) -> str:
    """3 Dec 2026, 14:05 CET: the day without a leading zero, as everywhere in the UI."""
    return f"{moment.day} {moment:%b %Y, %H:%M %Z}"
