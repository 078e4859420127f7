"""Periodic: the follow-up emails due after interviews."""

from __future__ import annotations

from app.extensions import db
from app.jobs import with_app_context
from app.outbox.queue import kick_dispatcher
from app.results import follow_up


@with_app_context
def send_follow_ups() -> int:
    """Queue the follow-ups that are due (each once) and wake the dispatchers."""
    queued = follow_up.send_due()
    db.session.commit()
    if queued:
        kick_dispatcher()
    return queued
