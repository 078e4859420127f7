"""Periodic: fold new events into the dashboard's rollups."""

from __future__ import annotations

from app.extensions import db
from app.jobs import with_app_context


@with_app_context
def apply_rollups() -> int:
    """Apply the events that arrived since the last run; how many events were read."""
    from app.tracking.rollups import apply_pending

    covered = apply_pending()
    db.session.commit()
    return covered
