"""Event retention: each organization's events older than its setting are deleted, in batches.

Only events the rollups have already counted are deleted (the dashboard keeps its figures), never
those of a failed email waiting in Dead letters, and
the cut falls on a UTC midnight, so a rollup bucket is never half deleted: rollups.rebuild()
keeps the buckets before an organization's cut and recomputes the rest from the events left.
Messages keep their status and dates; their timelines say that older events were deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta

from sqlalchemy import select, text

from app import clock
from app.extensions import db
from app.models import Organization
from app.tenancy import ALL_ORGS

BATCH = 5_000

_PURGE = text(
    """
    DELETE FROM events WHERE id IN (
        SELECT id FROM events
        WHERE org_id = :org AND created_at < :cutoff
          AND id <= (SELECT coalesce(max(upto), 0) FROM rollup_marks WHERE name = 'events')
          AND NOT EXISTS (  -- a failed email keeps its attempts until it is retried or discarded
              SELECT 1 FROM messages m WHERE m.id = events.message_id AND m.status = 'failed')
        LIMIT :batch)
    """
)


def cutoff(days: int, now: datetime | None = None) -> datetime | None:
    """The first instant kept for a retention of `days` (a UTC midnight); None keeps all."""
    if not days:
        return None
    day = ((now or clock.now()) - timedelta(days=days)).date()
    return datetime.combine(day, time.min, tzinfo=clock.now().tzinfo)


def purge(now: datetime | None = None) -> Iterator[int]:
    """Delete what every organization's retention lets go, one step at a time, yielding how many
    events each step deleted. The caller commits after each step: an organization's horizon is
    saved before any event it covers goes, and each batch's locks are held no longer."""
    orgs = db.session.execute(
        select(Organization.id, Organization.event_retention_days)
        .where(Organization.event_retention_days > 0)
        .execution_options(**ALL_ORGS)
    ).all()
    for org_id, days in orgs:
        cut = cutoff(days, now)
        # remembered first: a rebuild never recomputes a day whose events may be gone
        db.session.execute(
            text(
                "UPDATE organizations SET events_purged_before = :cut WHERE id = :org"
                " AND (events_purged_before IS NULL OR events_purged_before < :cut)"
            ),
            {"org": org_id, "cut": cut},
        )
        yield 0
        while True:
            gone = db.session.execute(
                _PURGE, {"org": org_id, "cutoff": cut, "batch": BATCH}
            ).rowcount
            yield gone
            if gone < BATCH:
                break
