"""Periodic: delete events past each organization's retention, used webhook tokens whose
signatures are too old to be accepted again, and sessions that ended over a week ago (hourly)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from app import sessions
from app.extensions import db
from app.jobs import with_app_context
from app.provider_events.mailgun import purge_tokens
from app.tracking.retention import purge


@with_app_context
def purge_events(now: datetime | None = None) -> int:
    """How many events were deleted (those older than each organization's retention at `now`)."""
    deleted = 0
    for gone in purge(now):
        db.session.commit()  # a step at a time: the horizon first, then each batch
        deleted += gone
    purge_tokens(current_app.config["WEBHOOK_MAX_AGE_SECONDS"])
    sessions.purge(timedelta(days=7))
    db.session.commit()
    return deleted
