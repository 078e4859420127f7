"""Rollups: dashboard counters per 15-minute UTC bucket, campaign, template and job, folded in
from the events table in batches behind a high-water mark (in SQL, one statement per batch).

A run applies the events up to the newest id seen by the *previous* run, so an event whose
transaction committed a little late is not skipped. Late machine flags arrive as 'reclassified'
events: they subtract what was counted as human, but only when the original event had already
been applied (otherwise it is counted with its current flag). rebuild() recomputes everything from
the events with their current flags and must agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from app import clock
from app.extensions import db
from app.models import COUNTERS, TEMPLATE_TEST

# Only mail made from the org's own templates (invitations, reminders, notices to candidates)
# is counted: Herald's built-in mail to the team (a candidate's answer, invites, resets, test
# mail) and a template's test sends to the team would skew the candidates' rates.
NAME = "events"
BATCH = 50_000
BUCKET = "to_timestamp(floor(extract(epoch from {e}.created_at) / 900) * 900)"
TYPES = (
    "sent",
    "delivered",
    "bounced",
    "complained",
    "failed",
    "opened",
    "clicked",
    "accepted",
    "declined",
    "unsubscribed",
)
_COUNTS = """
    count(*) FILTER (WHERE e.type = 'sent'),
    count(*) FILTER (WHERE e.type = 'delivered' AND e.detail->>'repeat' IS NULL),
    count(*) FILTER (WHERE e.type = 'bounced' AND e.detail->>'severity' = 'permanent'),
    count(*) FILTER (WHERE e.type = 'complained'),
    count(*) FILTER (WHERE e.type = 'failed'),
    count(*) FILTER (WHERE e.type = 'opened'),
    count(*) FILTER (WHERE e.type = 'opened' AND NOT e.machine),
    count(*) FILTER (WHERE e.type = 'opened' AND e.first),
    count(*) FILTER (WHERE e.type = 'opened' AND e.first_human),
    count(*) FILTER (WHERE e.type = 'clicked'),
    count(*) FILTER (WHERE e.type = 'clicked' AND NOT e.machine),
    count(*) FILTER (WHERE e.type = 'clicked' AND e.first),
    count(*) FILTER (WHERE e.type = 'clicked' AND e.first_human),
    count(*) FILTER (WHERE e.type = 'accepted'),
    count(*) FILTER (WHERE e.type = 'declined'),
    count(*) FILTER (WHERE e.type = 'unsubscribed')
"""
_COLUMNS = ", ".join(COUNTERS)
_UPSERT = ", ".join(f"{c} = rollups.{c} + excluded.{c}" for c in COUNTERS)
_DIMENSIONS = """
    FROM events e JOIN messages m ON m.id = e.message_id
    LEFT JOIN template_versions tv ON tv.id = m.template_version_id
    LEFT JOIN campaigns c ON c.id = m.campaign_id
"""
_APPLY = text(
    f"""
    INSERT INTO rollups (org_id, bucket, campaign_id, template_id, job_id, {_COLUMNS})
    SELECT e.org_id, {BUCKET.format(e="e")}, coalesce(m.campaign_id, 0),
           coalesce(tv.template_id, 0), coalesce(c.job_id, 0), {_COUNTS}
    {_DIMENSIONS}
    WHERE e.id > :lo AND e.id <= :hi AND m.template = 'version' AND m.kind <> '{TEMPLATE_TEST}'
      AND e.type IN {TYPES} {{org}}
    GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (org_id, bucket, campaign_id, template_id, job_id) DO UPDATE SET {_UPSERT}
    """.replace("{org}", "")
)
_REBUILD = text(
    str(_APPLY).replace("e.type IN", "e.org_id = :org AND e.created_at >= :since AND e.type IN")
)
_ZERO = ", ".join("0" for _ in COUNTERS[:10])
_CORRECT = text(
    f"""
    INSERT INTO rollups (org_id, bucket, campaign_id, template_id, job_id, {_COLUMNS})
    SELECT o.org_id, {BUCKET.format(e="o")}, coalesce(m.campaign_id, 0),
           coalesce(tv.template_id, 0), coalesce(c.job_id, 0), {_ZERO},
           -count(*), 0, -count(*) FILTER (WHERE (e.detail->>'was_first_human')::boolean),
           0, 0, 0
    FROM events e JOIN events o ON o.id = (e.detail->>'event')::bigint
    JOIN messages m ON m.id = o.message_id
    LEFT JOIN template_versions tv ON tv.id = m.template_version_id
    LEFT JOIN campaigns c ON c.id = m.campaign_id
    WHERE e.id > :lo AND e.id <= :hi AND e.type = 'reclassified' AND o.id <= :applied
      AND m.template = 'version' AND m.kind <> '{TEMPLATE_TEST}'
    GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (org_id, bucket, campaign_id, template_id, job_id) DO UPDATE SET {_UPSERT}
    """
)


def _mark():  # noqa: ANN202
    db.session.execute(
        text(
            "INSERT INTO rollup_marks (name, upto, seen) VALUES (:n, 0, 0) ON CONFLICT DO NOTHING"
        ),
        {"n": NAME},
    )
    return db.session.execute(
        text("SELECT upto, seen FROM rollup_marks WHERE name = :n FOR UPDATE SKIP LOCKED"),
        {"n": NAME},
    ).first()


def apply_pending() -> int:
    """One run: apply (upto, seen], remember the newest id as the next run's `seen`; the caller
    commits (which frees the mark). How many event ids were covered (0 when another run holds
    the mark)."""
    mark = _mark()
    if mark is None:
        db.session.rollback()
        return 0
    upto, seen = mark
    newest = db.session.execute(text("SELECT coalesce(max(id), 0) FROM events")).scalar()
    lo = upto
    while lo < seen:
        hi = min(seen, lo + BATCH)
        db.session.execute(_APPLY, {"lo": lo, "hi": hi})
        db.session.execute(_CORRECT, {"lo": lo, "hi": hi, "applied": upto})
        lo = hi
    db.session.execute(
        text(
            "UPDATE rollup_marks SET upto = :upto, seen = :seen, applied_at = :now WHERE name = :n"
        ),
        {"upto": max(upto, seen), "seen": max(newest, seen), "now": clock.now(), "n": NAME},
    )
    return max(0, seen - upto)


def flush() -> None:
    """Apply everything already committed (tests, the rebuild, the CLI): two runs. The caller
    commits."""
    apply_pending()
    apply_pending()


def rebuild(org_ids: list[int]) -> None:
    """Recompute these orgs' rollups from their events (current flags), up to the mark; the
    days whose events retention deleted keep their rollups. The caller commits."""
    mark = _mark()
    upto = mark[0] if mark else 0
    for org_id in org_ids:
        since = db.session.execute(
            # locked: a purge moving the horizon meanwhile waits for this rebuild
            text("SELECT events_purged_before FROM organizations WHERE id = :org FOR UPDATE"),
            {"org": org_id},
        ).scalar() or datetime(1970, 1, 1, tzinfo=UTC)
        db.session.execute(
            text("DELETE FROM rollups WHERE org_id = :org AND bucket >= :since"),
            {"org": org_id, "since": since},
        )
        db.session.execute(_REBUILD, {"lo": 0, "hi": upto, "org": org_id, "since": since})


def freshness():  # noqa: ANN201
    """When the rollups were last brought up to date (None before the first run)."""
    return db.session.execute(
        text("SELECT applied_at FROM rollup_marks WHERE name = :n"), {"n": NAME}
    ).scalar()
