"""Recording opens and clicks: one statement per hit (the row lock orders concurrent hits of one
message, so "first" and "first human" are right), with `synchronous_commit = off` for speed while
PostgreSQL stays the one truth. Status only moves forward: delivered < opened < clicked, and only
a person's open or click moves it."""

from __future__ import annotations

import json

from sqlalchemy import text

from app import clock
from app.extensions import db
from app.tracking.rules import BURST_CLICK_SECONDS

RANK = {None: 0, "delivered": 1, "opened": 2, "clicked": 3}

_RECORD = """
WITH m AS (
    SELECT id, org_id, {first_col} AS first_at, {human_col} AS human_at
    FROM messages WHERE id = :id FOR UPDATE
), upd AS (
    UPDATE messages SET
        {first_col} = coalesce(messages.{first_col}, :now),
        {human_col} = CASE WHEN :human THEN coalesce(messages.{human_col}, :now)
                      ELSE messages.{human_col} END,
        delivery = CASE WHEN :human AND coalesce(messages.delivery, '') IN ({lower})
                   THEN :kind ELSE messages.delivery END
    FROM m WHERE messages.id = m.id
    RETURNING m.org_id, m.first_at IS NULL AS first, (:human AND m.human_at IS NULL) AS first_human
)
INSERT INTO events (org_id, message_id, type, detail, created_at, machine, machine_reason,
                    first, first_human)
SELECT org_id, :id, :type, CAST(:detail AS jsonb), :now, NOT :human, :reason, first, first_human
FROM upd
RETURNING id
"""
_OPEN = text(
    _RECORD.format(first_col="opened_at", human_col="human_opened_at", lower="'', 'delivered'")
)
_CLICK = text(
    _RECORD.format(
        first_col="clicked_at", human_col="human_clicked_at", lower="'', 'delivered', 'opened'"
    )
)


def _fast() -> None:
    db.session.execute(text("SET LOCAL synchronous_commit = off"))


def record_open(message_id: int, reason: str | None, detail: dict) -> int | None:
    """Store one pixel fetch; the event id, or None for a message that no longer exists."""
    _fast()
    params = {
        "id": message_id,
        "now": clock.now(),
        "human": reason is None,
        "reason": reason,
        "kind": "opened",
        "type": "opened",
        "detail": json.dumps(detail),
    }
    event_id = db.session.execute(_OPEN, params).scalar()
    db.session.commit()
    return event_id


def sent_at(message_id: int):  # noqa: ANN201
    return db.session.execute(
        text("SELECT sent_at FROM messages WHERE id = :id"), {"id": message_id}
    ).scalar()


def record_click(message_id: int, url: str, reason: str | None, detail: dict) -> int | None:
    """Store one click, then flag a burst of clicks on different links as a scanner's."""
    _fast()
    now = clock.now()
    params = {
        "id": message_id,
        "now": now,
        "human": reason is None,
        "reason": reason,
        "kind": "clicked",
        "type": "clicked",
        "detail": json.dumps({**detail, "url": url}),
    }
    event_id = db.session.execute(_CLICK, params).scalar()
    if event_id is not None and reason is None:
        _flag_burst(message_id, now)
    db.session.commit()
    return event_id


_BURST = text(
    """
    SELECT id, detail->>'url' AS url, first_human FROM events
    WHERE message_id = :id AND type = 'clicked' AND NOT machine
      AND created_at >= :since
    """
)


def _flag_burst(message_id: int, now) -> None:  # noqa: ANN001
    """Several different links of one message clicked within a second: every one of those clicks
    was a scanner. Flag them and emit correcting events so the rollups subtract them."""
    from datetime import timedelta

    rows = db.session.execute(
        _BURST, {"id": message_id, "since": now - timedelta(seconds=BURST_CLICK_SECONDS)}
    ).all()
    if len({r.url for r in rows}) < 2:
        return
    ids = [r.id for r in rows]
    db.session.execute(
        text(
            "UPDATE events SET machine = true, machine_reason = 'link_burst', first_human = false"
            " WHERE id = ANY(:ids)"
        ),
        {"ids": ids},
    )
    lost_first = any(r.first_human for r in rows)
    db.session.execute(
        text(
            "UPDATE messages SET human_clicked_at = NULL,"
            " delivery = CASE WHEN delivery = 'clicked' THEN"
            "   CASE WHEN human_opened_at IS NOT NULL THEN 'opened'"
            "        WHEN delivered_at IS NOT NULL THEN 'delivered' ELSE NULL END"
            " ELSE delivery END"
            " WHERE id = :id AND :lost"
        ),
        {"id": message_id, "lost": lost_first},
    )
    for row in rows:
        db.session.execute(
            text(
                "INSERT INTO events (org_id, message_id, type, detail, created_at)"
                " SELECT org_id, id, 'reclassified', CAST(:detail AS jsonb), :now"
                " FROM messages WHERE id = :id"
            ),
            {
                "id": message_id,
                "now": now,
                "detail": json.dumps(
                    {"event": row.id, "kind": "clicked", "was_first_human": row.first_human}
                ),
            },
        )
