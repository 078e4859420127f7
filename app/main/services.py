"""Overview rules: the test email."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app import clock
from app.extensions import db
from app.mail.outbox import queue_message
from app.models import Message, Organization, User


def send_test_email(org: Organization, user: User) -> Message:
    """Queue a test email to the current user through the real pipeline, and commit."""
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
    db.session.commit()
    return message


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
