"""Periodic: start scheduled campaigns whose time has come, and feed the dispatchers."""

from __future__ import annotations

from app.campaigns import services
from app.extensions import db
from app.invitations import reminders
from app.jobs import with_app_context
from app.mail.outbox import kick_dispatcher


@with_app_context
def start_due_campaigns() -> int:
    """Scheduled → sending at their time (their messages are already due in the outbox)."""
    started = services.start_due()
    db.session.commit()
    if started:
        kick_dispatcher()
    return started


@with_app_context
def send_reminders() -> dict[str, int]:
    """Queue the reminders that are due (the dispatchers send them like any other mail)."""
    counts = reminders.send_due()
    db.session.commit()
    if counts["sent"]:
        kick_dispatcher()
    return counts
