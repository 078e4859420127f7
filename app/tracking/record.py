"""Recording opens and clicks: a spool file per process, stored in batches by a writer thread.

A hit is one line appended (`write(2)`, O_APPEND) to this process's spool file, and then answered:
the bytes are the kernel's from that moment, so a killed process (even `kill -9`) loses no
answered hit. The process's writer thread reads what was appended and stores it in PostgreSQL,
the one truth, one statement per kind for every hit waiting (autocommit, `synchronous_commit =
off`): under load one round trip serves hundreds of hits, and the request never waits on the
database. Each hit's row carries a unique key (spool file and offset), so storing it again is a
no-op: a spool left by a dead process (its lock is free) is adopted and replayed by the next
writer that starts on the same instance directory, then deleted. A fully stored spool is
rotated. With TRACKING_WAIT_FOR_STORE (tests), a request waits until its own hit is stored.

In the statement, each message's row lock orders concurrent hits (from other processes), so
"first" and "first human" are right; a statement holds at most one hit per message and kind (a
second one goes in the next statement). Status only moves forward: delivered < opened <
clicked, and only a person's open or click moves it. A click "right after sending" is judged in
the statement, from the message's own `sent_at`. Events are stored within tens of milliseconds;
what a recruiter reads (dashboard rollups) is applied every minute anyway.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from flask import Flask, current_app
from sqlalchemy.engine import make_url

from app import clock
from app.tracking.rules import BURST_CLICK_SECONDS, RULES_VERSION

log = logging.getLogger(__name__)
RANK = {None: 0, "delivered": 1, "opened": 2, "clicked": 3}
MAX_BATCH = 1000  # hits per statement
ROTATE_BYTES = 8 * 1024 * 1024  # a fully stored spool this big is replaced by a new one
ADOPT_EVERY = 30.0  # seconds between looks for dead processes' spools
WAIT_SECONDS = 10.0  # TRACKING_WAIT_FOR_STORE: how long a request waits for its hit

_RECORD = """
WITH h AS (
    SELECT * FROM jsonb_to_recordset(CAST(:hits AS jsonb))
        AS h(id bigint, at timestamptz, reason text, detail jsonb, scan_s float8, key text)
), m AS (
    SELECT messages.id, messages.org_id, {first_col} AS first_at, {human_col} AS human_at,
           coalesce(messages.delivery, '') AS delivery,
           h.at, h.detail, h.key, coalesce(h.reason, {late_reason}) AS reason
    FROM messages JOIN h ON h.id = messages.id
    ORDER BY messages.id
    FOR UPDATE OF messages
), upd AS (  -- only rows that change: a repeat open writes its event and nothing else
    UPDATE messages SET
        {first_col} = coalesce(messages.{first_col}, m.at),
        {human_col} = CASE WHEN m.reason IS NULL THEN coalesce(messages.{human_col}, m.at)
                      ELSE messages.{human_col} END,
        delivery = CASE WHEN m.reason IS NULL AND m.delivery IN ({lower})
                   THEN '{kind}' ELSE messages.delivery END
    FROM m WHERE messages.id = m.id AND (
        m.first_at IS NULL
        OR (m.reason IS NULL AND (m.human_at IS NULL OR m.delivery IN ({lower}))))
    RETURNING messages.id
)
INSERT INTO events (org_id, message_id, type, detail, created_at, machine, machine_reason,
                    first, first_human, provider_event_id)
SELECT org_id, m.id, '{kind}',
       CASE WHEN reason IS NULL THEN detail
            ELSE detail || jsonb_build_object('rules', CAST(:rules AS text)) END,
       at, reason IS NOT NULL, reason, first_at IS NULL,
       (reason IS NULL AND human_at IS NULL), key
FROM m  -- upd runs to completion whether or not it is read (a data-modifying WITH)
ON CONFLICT (provider_event_id) DO NOTHING
RETURNING message_id, id, machine, created_at
"""


def _driver(sql: str) -> str:
    """psycopg's own placeholders: these statements run on the writer's psycopg connection."""
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


STATEMENTS = {
    "opened": _driver(
        _RECORD.format(
            kind="opened",
            first_col="opened_at",
            human_col="human_opened_at",
            lower="'', 'delivered'",
            late_reason="NULL",
        )
    ),
    # A click this soon after the message was sent is a link scanner's.
    "clicked": _driver(
        _RECORD.format(
            kind="clicked",
            first_col="clicked_at",
            human_col="human_clicked_at",
            lower="'', 'delivered', 'opened'",
            late_reason="CASE WHEN messages.sent_at > h.at - make_interval(secs => h.scan_s)"
            " THEN 'click_right_after_send' END",
        )
    ),
}


class Writer:
    """One per process and database: the spool file, the thread that stores it, its connection."""

    def __init__(self, dsn: str, spool_dir: Path) -> None:
        self.dsn = dsn
        self.dir = spool_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self.lock = threading.Lock()  # appends and rotation
        self.stored = threading.Condition()  # waiters for TRACKING_WAIT_FOR_STORE
        self.wake = threading.Event()
        self.store_lock = threading.Lock()  # one user of the connection at a time
        self.conn: psycopg.Connection | None = None
        self.base = 0  # bytes of earlier (rotated) spools: offsets below are totals
        self.written = 0  # total bytes appended
        self.done = 0  # total bytes stored
        self._open()
        self.thread = threading.Thread(target=self._loop, name="herald-hits", daemon=True)
        self.thread.start()

    def _open(self) -> None:
        self.path = self.dir / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.hits"
        self.fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # alive: nobody adopts it

    def append(
        self,
        kind: str,
        message_id: int,
        reason: str | None,
        detail: dict,
        window: float = 0.0,
        wait: bool = False,
    ) -> None:
        line = [kind, message_id, clock.now().isoformat(), reason, detail, window]
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        with self.lock:
            os.write(self.fd, data)
            self.written += len(data)
            end = self.written
        self.wake.set()
        if wait:
            with self.stored:
                if not self.stored.wait_for(lambda: self.done >= end, WAIT_SECONDS):
                    log.warning("tracking: a hit is spooled but not yet stored")

    def drain(self, timeout: float = WAIT_SECONDS) -> bool:
        """Wait until everything appended so far is stored (tests, shutdown)."""
        end = self.written
        self.wake.set()
        with self.stored:
            return self.stored.wait_for(lambda: self.done >= end, timeout)

    def close(self) -> None:
        """At exit: store what is spooled and delete the spool; if the database cannot be
        reached, the spool stays, unlocked, for the next writer to adopt."""
        if self.drain(5.0):
            with self.lock:
                if self.done >= self.written:
                    self.path.unlink(missing_ok=True)

    # the writer thread

    def _loop(self) -> None:
        adopted_at = 0.0
        pause = 0.0
        while True:
            self.wake.wait(timeout=1.0 if not pause else pause)
            self.wake.clear()
            try:
                if time.monotonic() - adopted_at > ADOPT_EVERY:
                    adopted_at = time.monotonic()
                    self.adopt()
                self._store_new()
                self._rotate()
                pause = 0.0
            except Exception:  # noqa: BLE001 - the spool keeps the hits; try again shortly
                log.exception("tracking writer: hits stay spooled, retrying")
                self._drop_connection()
                pause = min(5.0, (pause or 0.25) * 2)

    def _store_new(self) -> None:
        with self.lock:
            start, end, path, base = self.done, self.written, self.path, self.base
        if end <= start:
            return
        with open(path, "rb") as f:
            f.seek(start - base)
            data = f.read(end - start)
        self._store_lines(path.name, start - base, data)
        with self.stored:
            self.done = end
            self.stored.notify_all()

    def _rotate(self) -> None:
        with self.lock:
            if self.done < self.written or self.written - self.base < ROTATE_BYTES:
                return
            old_fd, old_path = self.fd, self.path
            self.base = self.written
            self._open()
        os.unlink(old_path)  # everything in it is stored
        os.close(old_fd)

    def adopt(self) -> None:
        """Store and delete the spools of processes that died before storing them."""
        for path in sorted(self.dir.glob("*.hits")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                data = b""
                while chunk := os.read(fd, 1 << 20):
                    data += chunk
                if data:
                    log.info(
                        "tracking: storing a spool left by a dead process (%d bytes)", len(data)
                    )
                    self._store_lines(path.name, 0, data)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)

    def _store_lines(self, name: str, offset: int, data: bytes) -> None:
        with self.store_lock:
            self._store_lines_locked(name, offset, data)

    def _store_lines_locked(self, name: str, offset: int, data: bytes) -> None:
        hits = []
        for line in data.split(b"\n"):
            if line:
                try:
                    kind, message_id, at, reason, detail, window = json.loads(line)
                except ValueError:  # a line cut by a crash mid-write: never answered
                    log.warning("tracking: an unreadable spool line skipped")
                else:
                    hits.append(
                        (kind, message_id, at, reason, detail, window, f"hit:{name}:{offset}")
                    )
            offset += len(line) + 1
        for attempt in (1, 2):
            try:
                self._store(self._connection(), hits)
                return
            except psycopg.OperationalError:
                self._drop_connection()  # a dead connection: once more on a new one
                if attempt == 2:
                    raise

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(
                self.dsn, autocommit=True, options="-c synchronous_commit=off"
            )
        return self.conn

    def _drop_connection(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None

    def _store(self, conn: psycopg.Connection, hits: list[tuple]) -> None:
        """In statements of at most one hit per message and kind, in order."""
        while hits:
            batch, rest, seen = [], [], set()
            for hit in hits:
                key = (hit[0], hit[1])
                if key in seen or len(batch) >= MAX_BATCH:
                    rest.append(hit)
                else:
                    seen.add(key)
                    batch.append(hit)
            self._statements(conn, batch)
            hits = rest

    def _statements(self, conn: psycopg.Connection, batch: list[tuple]) -> None:
        human_clicks: dict[int, datetime] = {}
        for kind in ("opened", "clicked"):
            hits = [h for h in batch if h[0] == kind]
            if not hits:
                continue
            rows = [
                dict(id=h[1], at=h[2], reason=h[3], detail=h[4], scan_s=h[5], key=h[6])
                for h in hits
            ]
            # one JSON document (serialized in C) instead of an array parameter per column
            params = {"hits": json.dumps(rows), "rules": RULES_VERSION}
            for message_id, _id, machine, at in conn.execute(
                STATEMENTS[kind], params, prepare=True
            ):
                if kind == "clicked" and not machine:
                    human_clicks[message_id] = at
        if human_clicks:
            # After the clicks' own commit: of two clicks racing on one message, the later one
            # always sees the earlier.
            _flag_bursts(conn, human_clicks)


_lock = threading.Lock()


def _spool_dir(app: Flask, url) -> Path:  # noqa: ANN001
    """Per database: a spool is only ever stored into the database it was written for."""
    where = f"{url.host}:{url.port}/{url.database}"
    tag = hashlib.sha256(where.encode()).hexdigest()[:12]
    return Path(app.config["TRACKING_SPOOL_DIR"]) / tag


def writer(app: Flask | None = None) -> Writer:
    """This process's writer for the app's database (a new one after a fork)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: Writer | None = app.extensions.get("herald_hit_writer")
    if found is None or found.pid != os.getpid():
        with _lock:
            found = app.extensions.get("herald_hit_writer")
            if found is None or found.pid != os.getpid():
                url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
                found = Writer(url.render_as_string(hide_password=False), _spool_dir(app, url))
                app.extensions["herald_hit_writer"] = found
                atexit.register(found.close)
    return found


def record_open(message_id: int, reason: str | None, detail: dict) -> None:
    """Spool one pixel fetch (stored by the writer thread)."""
    app = current_app
    writer().append(
        "opened", message_id, reason, detail, wait=app.config["TRACKING_WAIT_FOR_STORE"]
    )


def record_click(message_id: int, url: str, reason: str | None, detail: dict) -> None:
    """Spool one click; a burst of clicks on different links is flagged as a scanner's."""
    app = current_app
    writer().append(
        "clicked",
        message_id,
        reason,
        {**detail, "url": url},
        window=app.config["SCANNER_CLICK_SECONDS"],
        wait=app.config["TRACKING_WAIT_FOR_STORE"],
    )


_BURST = """
    SELECT message_id, id, detail->>'url' AS url, first_human, created_at FROM events
    WHERE message_id = ANY(%(ids)s) AND type = 'clicked' AND NOT machine
      AND created_at >= %(since)s
"""


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


def _reclassify(conn: psycopg.Connection, message_id: int, rows: list, now: datetime) -> None:
    was_first = {r[1]: r[3] for r in rows}
    flagged = conn.execute(
        "UPDATE events SET machine = true, machine_reason = 'link_burst', first_human = false"
        " WHERE id = ANY(%(ids)s) AND NOT machine RETURNING id",
        {"ids": list(was_first)},
    ).fetchall()
    if not flagged:
        return  # a concurrent click flagged them already
    conn.execute(
        "UPDATE messages SET human_clicked_at = NULL,"
        " delivery = CASE WHEN delivery = 'clicked' THEN"
        "   CASE WHEN human_opened_at IS NOT NULL THEN 'opened'"
        "        WHEN delivered_at IS NOT NULL THEN 'delivered' ELSE NULL END"
        " ELSE delivery END"
        " WHERE id = %(id)s AND %(lost)s",
        {"id": message_id, "lost": any(was_first[r[0]] for r in flagged)},
    )
    for (event_id,) in flagged:
        conn.execute(
            "INSERT INTO events (org_id, message_id, type, detail, created_at)"
            " SELECT org_id, id, 'reclassified', CAST(%(detail)s AS jsonb), %(now)s"
            " FROM messages WHERE id = %(id)s",
            {
                "id": message_id,
                "now": now,
                "detail": json.dumps(
                    {"event": event_id, "kind": "clicked", "was_first_human": was_first[event_id]}
                ),
            },
        )
