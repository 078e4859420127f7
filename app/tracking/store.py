"""Storing opens and clicks in PostgreSQL, the one truth: one statement per kind for every hit
waiting, on the spool writer's own connection (autocommit, `synchronous_commit = off`), so under
load one round trip serves hundreds of hits and no request waits on the database.

Each hit's row carries a unique key (spool file and offset), so storing it again is a no-op. In
the statement, each message's row lock orders concurrent hits (from other processes), so "first"
and "first human" are right; a statement holds at most one hit per message and kind (a second
one goes in the next statement). Status only moves forward: delivered < opened < clicked, and
only a person's open or click moves it. A click "right after sending" is judged in the
statement, from the message's own `sent_at`. Events are stored within tens of milliseconds;
what a recruiter reads (dashboard rollups) is applied every minute anyway.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg
from psycopg import sql

from app.tracking.rules import BURST_CLICK_SECONDS, RULES_VERSION

MAX_BATCH = 1000  # hits per statement


class Hit(NamedTuple):
    """One spooled open or click, as the statements take it."""

    kind: str  # "opened" or "clicked"
    message_id: int
    at: str  # ISO time
    reason: str | None  # why a machine's, else None
    detail: dict
    scan_s: float  # a click this soon after sending is a link scanner's
    key: str  # unique per hit (spool file and offset): storing it twice is a no-op


_RECORD = sql.SQL("""
WITH h AS (
    SELECT * FROM jsonb_to_recordset(CAST(%(hits)s AS jsonb))
        AS h(id bigint, at timestamptz, reason text, detail jsonb, scan_s float8, key text)
), m AS (
    SELECT messages.id, messages.org_id, messages.{first_col} AS first_at,
           messages.{human_col} AS human_at, coalesce(messages.delivery, '') AS delivery,
           h.at, h.detail, h.key, coalesce(h.reason, {late_reason}) AS reason
    FROM messages JOIN h ON h.id = messages.id
    -- a hit from before the message existed was spooled for a database since replaced (same
    -- address, ids begun again): it is not this message's (a minute allowed for clock skew)
    WHERE messages.created_at <= h.at + interval '1 minute'
    ORDER BY messages.id
    FOR UPDATE OF messages
), ins AS (  -- a hit stored before (a replayed spool) inserts nothing and changes nothing
    INSERT INTO events (org_id, message_id, type, detail, created_at, machine, machine_reason,
                        first, first_human, provider_event_id)
    SELECT org_id, id, {kind},
           CASE WHEN reason IS NULL THEN detail
                ELSE detail || jsonb_build_object('rules', CAST(%(rules)s AS text)) END,
           at, reason IS NOT NULL, reason, first_at IS NULL,
           (reason IS NULL AND human_at IS NULL), key
    FROM m
    ON CONFLICT (provider_event_id) DO NOTHING
    RETURNING message_id
)
UPDATE messages SET  -- only rows that change: a repeat open writes its event and nothing else
    {first_col} = least(coalesce(messages.{first_col}, m.at), m.at),
    {human_col} = CASE WHEN m.reason IS NULL THEN least(coalesce(messages.{human_col}, m.at), m.at)
                  ELSE messages.{human_col} END,
    delivery = CASE WHEN m.reason IS NULL AND m.delivery IN ({lower})
               THEN {kind} ELSE messages.delivery END
FROM m JOIN ins ON ins.message_id = m.id
WHERE messages.id = m.id AND (
    m.first_at IS NULL OR m.at < m.first_at
    OR (m.reason IS NULL AND (m.human_at IS NULL OR m.at < m.human_at
                              OR m.delivery IN ({lower}))))
""")


def _statement(
    kind: str, first: str, human: str, lower: tuple[str, ...], late: sql.Composable
) -> str:
    """The statement for one kind (its columns, the statuses it moves past, its late reason),
    rendered once: the writer runs it for every batch."""
    return _RECORD.format(
        kind=sql.Literal(kind),
        first_col=sql.Identifier(first),
        human_col=sql.Identifier(human),
        lower=sql.SQL(", ").join(sql.Literal(status) for status in lower),
        late_reason=late,
    ).as_string()


STATEMENTS = {
    "opened": _statement("opened", "opened_at", "human_opened_at", ("", "delivered"), sql.NULL),
    # A click this soon after the message was sent is a link scanner's.
    "clicked": _statement(
        "clicked",
        "clicked_at",
        "human_clicked_at",
        ("", "delivered", "opened"),
        sql.SQL(
            "CASE WHEN messages.sent_at > h.at - make_interval(secs => h.scan_s)"
            " THEN 'click_right_after_send' END"
        ),
    ),
}
KINDS = frozenset(STATEMENTS)


class HitStore:
    """The writer's connection and the statements that store hits on it (one user at a time)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg.Connection | None = None

    def store(self, hits: list[Hit]) -> list[Hit]:
        """Store hits; returns those the database refused (bad data). A dead connection is
        replaced once, then the error goes up (the hits stay spooled)."""
        for attempt in (1, 2):
            try:
                return self._store(self._connection(), hits)
            except psycopg.OperationalError:
                self.reset()
                if attempt == 2:
                    raise
        return []  # not reached

    def reset(self) -> None:
        """Drop the connection (after an error): the next store opens a new one."""
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(
                self.dsn, autocommit=True, options="-c synchronous_commit=off"
            )
        return self.conn

    def _store(self, conn: psycopg.Connection, hits: list[Hit]) -> list[Hit]:
        """In statements of at most one hit per message and kind, in order; the hits a statement
        refused (bad data), one by one, are returned."""
        rounds: list[list[Hit]] = []
        seen: dict[tuple[str, int], int] = {}
        for hit in hits:  # the n-th hit of a message and kind goes in the n-th statement
            n = seen.get((hit.kind, hit.message_id), 0)
            seen[(hit.kind, hit.message_id)] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(hit)
        refused = []
        for group in rounds:
            for start in range(0, len(group), MAX_BATCH):
                batch = group[start : start + MAX_BATCH]
                try:
                    _statements(conn, batch)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error:
                    for hit in batch:  # find the one(s) it refuses
                        try:
                            _statements(conn, [hit])
                        except psycopg.OperationalError:
                            raise
                        except psycopg.Error:
                            refused.append(hit)
        return refused


def _statements(conn: psycopg.Connection, batch: list[Hit]) -> None:
    """One statement per kind for the batch, then the burst check of its people's clicks."""
    for kind, statement in STATEMENTS.items():
        rows = [
            dict(
                id=h.message_id,
                at=h.at,
                reason=h.reason,
                detail=h.detail,
                scan_s=h.scan_s,
                key=h.key,
            )
            for h in batch
            if h.kind == kind
        ]
        if rows:  # one JSON document (serialized in C) instead of an array parameter per column
            conn.execute(
                statement, {"hits": json.dumps(rows), "rules": RULES_VERSION}, prepare=True
            )
    # Every click a person's agent made, stored now or before (a replay): checked after the
    # clicks' own commit, so of two clicks racing on one message the later sees the earlier.
    clicks = {
        h.message_id: datetime.fromisoformat(h.at)
        for h in batch
        if h.kind == "clicked" and h.reason is None
    }
    if clicks:
        _flag_bursts(conn, clicks)


_BURST = sql.SQL("""
    SELECT message_id, id, detail->>'url' AS url, first_human, created_at FROM events
    WHERE message_id = ANY(%(ids)s) AND type = 'clicked' AND NOT machine
      AND created_at >= %(since)s
""")


def _flag_bursts(conn: psycopg.Connection, clicks: dict[int, datetime]) -> None:
    """Several different links of one message clicked within a second: every one of those clicks
    was a scanner. Flag them and emit correcting events so the rollups subtract them."""
    window = timedelta(seconds=BURST_CLICK_SECONDS)
    rows = conn.execute(
        _BURST, {"ids": list(clicks), "since": min(clicks.values()) - window}, prepare=True
    ).fetchall()
    for message_id, at in clicks.items():
        near = [r for r in rows if r[0] == message_id and r[4] >= at - window]
        if len({r[2] for r in near}) >= 2:
            with conn.transaction():
                _reclassify(conn, message_id, near, at)


_FLAG = sql.SQL(
    "UPDATE events SET machine = true, machine_reason = 'link_burst', first_human = false"
    " WHERE id = ANY(%(ids)s) AND NOT machine RETURNING id"
)
_UNCLICK = sql.SQL(
    "UPDATE messages SET human_clicked_at = NULL,"
    " delivery = CASE WHEN delivery = 'clicked' THEN"
    "   CASE WHEN human_opened_at IS NOT NULL THEN 'opened'"
    "        WHEN delivered_at IS NOT NULL THEN 'delivered' ELSE NULL END"
    " ELSE delivery END"
    " WHERE id = %(id)s AND %(lost)s"
)
_CORRECT = sql.SQL(
    "INSERT INTO events (org_id, message_id, type, detail, created_at)"
    " SELECT org_id, id, 'reclassified', CAST(%(detail)s AS jsonb), %(now)s"
    " FROM messages WHERE id = %(id)s"
)


def _reclassify(conn: psycopg.Connection, message_id: int, rows: list, now: datetime) -> None:
    """Flag the burst's clicks as machine ones; undo the human click they set; one correcting
    event per flagged click."""
    was_first = {r[1]: r[3] for r in rows}
    flagged = conn.execute(_FLAG, {"ids": list(was_first)}).fetchall()
    if not flagged:
        return  # a concurrent click flagged them already
    conn.execute(_UNCLICK, {"id": message_id, "lost": any(was_first[r[0]] for r in flagged)})
    for (event_id,) in flagged:
        detail = {"event": event_id, "kind": "clicked", "was_first_human": was_first[event_id]}
        conn.execute(_CORRECT, {"id": message_id, "now": now, "detail": json.dumps(detail)})
