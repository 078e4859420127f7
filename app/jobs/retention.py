"""Periodic: delete events past each organization's retention, used webhook tokens whose
signatures are too old to be accepted again, and sessions that ended over a week ago (hourly)."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from app import sessions
from app.extensions import db
from app.jobs import with_app_context
from app.provider_events.mailgun import purge_tokens
from app.tracking.retention import purge


@with_app_context
def purge_events() -> int:
    """How many events were deleted."""
    deleted = purge()
    purge_tokens(current_app.config["WEBHOOK_MAX_AGE_SECONDS"])
    sessions.purge(timedelta(days=7))
    db.session.commit()
    return deleted
