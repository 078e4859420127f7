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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from flask import Flask, current_app
from sqlalchemy.engine import make_url

from app import clock
from app.tracking.rules import BURST_CLICK_SECONDS, RULES_VERSION

log = logging.getLogger(__name__)
MAX_BATCH = 1000  # hits per statement
MAX_READ = 4 * 1024 * 1024  # bytes of spool read and stored per round
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
    -- a hit from before the message existed was spooled for a database since replaced (same
    -- address, ids begun again): it is not this message's (a minute allowed for clock skew)
    WHERE messages.created_at <= h.at + interval '1 minute'
    ORDER BY messages.id
    FOR UPDATE OF messages
), ins AS (  -- a hit stored before (a replayed spool) inserts nothing and changes nothing
    INSERT INTO events (org_id, message_id, type, detail, created_at, machine, machine_reason,
                        first, first_human, provider_event_id)
    SELECT org_id, id, '{kind}',
           CASE WHEN reason IS NULL THEN detail
                ELSE detail || jsonb_build_object('rules', CAST(:rules AS text)) END,
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
               THEN '{kind}' ELSE messages.delivery END
FROM m JOIN ins ON ins.message_id = m.id
WHERE messages.id = m.id AND (
    m.first_at IS NULL OR m.at < m.first_at
    OR (m.reason IS NULL AND (m.human_at IS NULL OR m.at < m.human_at
                              OR m.delivery IN ({lower}))))
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
    # The candidate's invitation page, judged as a click is; it leaves the delivery status be.
    # Its hits carry the invitation's id (the page has no other): the invitation email is the
    # first message written for it, and a campaign with tracking off records no view.
    "viewed": _driver(
        _RECORD.format(
            kind="viewed",
            first_col="viewed_at",
            human_col="human_viewed_at",
            lower="NULL",
            late_reason="CASE WHEN messages.sent_at > h.at - make_interval(secs => h.scan_s)"
            " THEN 'click_right_after_send' END",
        )
        .replace("WITH h AS (", "WITH v AS (", 1)
        .replace(
            "), m AS (",
            """), h AS (
    SELECT email.id, v.at, v.reason, v.detail, v.scan_s, v.key
    FROM v JOIN invitations ON invitations.id = v.id
    JOIN campaigns ON campaigns.id = invitations.campaign_id AND campaigns.tracking_enabled
    CROSS JOIN LATERAL (SELECT messages.id FROM messages WHERE messages.invitation_id = v.id
                        ORDER BY messages.id LIMIT 1) email
), m AS (""",
            1,
        )
    ),
}


VERSION = 1  # of a spool line: [VERSION, kind, message id, ISO time, reason, detail, scan seconds]


@dataclass(eq=False)
class Segment:
    """One spool file: `base` is the total offset of its first byte, `end` its last (set when a
    newer file took over; None while hits are appended to it)."""

    path: Path
    fd: int
    base: int
    end: int | None = None


class Writer:
    """One per process and database: the spool files, the thread that stores them, its
    connection."""

    def __init__(self, dsn: str, spool_dir: Path) -> None:
        self.dsn = dsn
        self.dir = spool_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self.lock = threading.Lock()  # appends and rotation
        self.stored = threading.Condition()  # waiters for TRACKING_WAIT_FOR_STORE
        self.wake = threading.Event()
        self.store_lock = threading.RLock()  # one storer (and user of the connection)
        self.conn: psycopg.Connection | None = None
        self.written = 0  # total bytes appended, over every segment
        self.done = 0  # total bytes stored
        self.segments = [Segment(*self._create(), base=0)]
        self.thread = threading.Thread(target=self._loop, name="herald-hits", daemon=True)
        self.thread.start()

    def _create(self) -> tuple[Path, int]:
        """A new spool, locked before it has the name adopters look for (*.hits)."""
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        temporary = self.dir / f"{name}.tmp"
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # alive: nobody adopts it
        path = self.dir / f"{name}.hits"
        os.rename(temporary, path)
        return path, fd

    @property
    def path(self) -> Path:
        return self.segments[-1].path

    def append(
        self,
        kind: str,
        message_id: int,
        reason: str | None,
        detail: dict,
        window: float = 0.0,
        wait: bool = False,
    ) -> None:
        line = [VERSION, kind, message_id, clock.now().isoformat(), reason, detail, window]
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        with self.lock:
            fd = self.segments[-1].fd
            try:
                view = memoryview(data)
                while view:  # a short write (disk nearly full) goes on where it stopped
                    view = view[os.write(fd, view) :]
            except OSError:
                if len(view) < len(data):
                    try:  # end the torn line, so the next one reads cleanly
                        os.write(fd, b"\n")
                        self.written += len(data) - len(view) + 1
                    except OSError:
                        pass
                raise  # not answered: the request fails
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
        if os.getpid() != self.pid:
            return  # a forked child's copy: the spool is its parent's
        if self.drain(5.0):
            with self.lock:
                if self.done >= self.written:
                    for segment in self.segments:
                        segment.path.unlink(missing_ok=True)

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
                if self.step():
                    self.wake.set()  # more is waiting: no pause
                pause = 0.0
            except Exception:  # noqa: BLE001 - the spool keeps the hits; try again shortly
                log.exception("tracking writer: hits stay spooled, retrying")
                self._drop_connection()
                pause = min(5.0, (pause or 0.25) * 2)

    def step(self) -> bool:
        """One round of the writer: store the next stretch, then rotate if the spool is big.
        True if more is waiting. Safe beside the writer thread (tests run it directly)."""
        with self.store_lock:
            more = self._store_next()
        self._rotate()
        return more

    def _store_next(self) -> bool:
        """Store the next stretch of complete lines (at most MAX_READ bytes); True if there is
        more. A segment that a newer one replaced is deleted once it is all stored."""
        with self.lock:
            written, segments = self.written, list(self.segments)
        for segment in segments:
            end = segment.end if segment.end is not None else written
            if self.done >= end:
                if segment.end is not None:
                    self._retire(segment)
                continue
            with open(segment.path, "rb") as f:
                f.seek(self.done - segment.base)
                data = f.read(min(end - self.done, MAX_READ))
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                return False  # not a whole line yet (cannot happen: appends are whole lines)
            self._store_lines(segment.path.name, self.done - segment.base, data[:cut])
            with self.stored:
                self.done += cut
                self.stored.notify_all()
            return self.done < written
        return False

    def _retire(self, segment: Segment) -> None:
        with self.lock:
            self.segments.remove(segment)
        segment.path.unlink(missing_ok=True)
        os.close(segment.fd)

    def _rotate(self) -> None:
        """A new segment once the current one is big: appends move to it at once, and the old
        one is deleted when everything in it is stored."""
        with self.lock:
            current = self.segments[-1]
            if self.written - current.base < ROTATE_BYTES:
                return
            path, fd = self._create()
            current.end = self.written
            self.segments.append(Segment(path, fd, base=self.written))

    def adopt(self) -> None:
        """Store and delete the spools of processes that died before storing them."""
        mine = {segment.path for segment in self.segments}
        stale = time.time() - 3600  # a *.tmp is a spool being created: only an old one is left
        leftovers = [p for p in self.dir.glob("*.tmp") if _mtime(p) < stale]
        for path in leftovers + sorted(self.dir.glob("*.hits")):
            if path in mine:
                continue
            try:
                self._adopt_one(path)
            except Exception:  # noqa: BLE001 - one bad spool must not keep the others waiting
                log.exception("tracking: could not store the spool %s yet", path.name)

    def _adopt_one(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its process is alive
            if path.suffix == ".hits":
                offset = 0
                with os.fdopen(os.dup(fd), "rb") as f:
                    while data := f.read(MAX_READ):
                        cut = data.rfind(b"\n") + 1 or len(data)  # a torn last line: read too
                        log.info("tracking: storing a dead process's spool (%d bytes)", cut)
                        self._store_lines(path.name, offset, data[:cut])
                        offset += cut
                        f.seek(offset)
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def _store_lines(self, name: str, offset: int, data: bytes) -> None:
        with self.store_lock:
            hits, bad = [], []
            for line in data.split(b"\n"):
                if line:
                    hit = _parse(line, f"hit:{name}:{offset}")
                    (hits if hit else bad).append(hit or line)
                offset += len(line) + 1
            for attempt in (1, 2):
                try:
                    bad += self._store(self._connection(), hits)
                    break
                except psycopg.OperationalError:
                    self._drop_connection()  # a dead connection: once more on a new one
                    if attempt == 2:
                        raise
            if bad:
                self._set_aside(name, bad)

    def _set_aside(self, name: str, lines: list) -> None:
        """Lines that cannot be stored go to <spool>.bad, next to the spool, and are logged:
        the rest is stored, nothing waits behind them and nothing is silently dropped."""
        log.error("tracking: %d spool lines could not be stored; kept in %s.bad", len(lines), name)
        with open(self.dir / f"{name}.bad", "ab") as f:
            for line in lines:
                f.write(line if isinstance(line, bytes) else _line(line))
                f.write(b"\n")

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

    def _store(self, conn: psycopg.Connection, hits: list[tuple]) -> list[tuple]:
        """In statements of at most one hit per message and kind, in order; the hits a statement
        refused (bad data), one by one, are returned."""
        rounds: list[list[tuple]] = []
        seen: dict[tuple[str, int], int] = {}
        for hit in hits:  # the n-th hit of a message and kind goes in the n-th statement
            n = seen.get((hit[0], hit[1]), 0)
            seen[(hit[0], hit[1])] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(hit)
        refused = []
        for group in rounds:
            for start in range(0, len(group), MAX_BATCH):
                batch = group[start : start + MAX_BATCH]
                try:
                    self._statements(conn, batch)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error:
                    for hit in batch:  # find the one(s) it refuses
                        try:
                            self._statements(conn, [hit])
                        except psycopg.OperationalError:
                            raise
                        except psycopg.Error:
                            refused.append(hit)
        return refused

    def _statements(self, conn: psycopg.Connection, batch: list[tuple]) -> None:
        for kind in STATEMENTS:
            hits = [h for h in batch if h[0] == kind]
            if not hits:
                continue
            rows = [
                dict(id=h[1], at=h[2], reason=h[3], detail=h[4], scan_s=h[5], key=h[6])
                for h in hits
            ]
            # one JSON document (serialized in C) instead of an array parameter per column
            conn.execute(
                STATEMENTS[kind], {"hits": json.dumps(rows), "rules": RULES_VERSION}, prepare=True
            )
        # Every click a person's agent made, stored now or before (a replay): checked after the
        # clicks' own commit, so of two clicks racing on one message the later sees the earlier.
        clicks = {
            h[1]: datetime.fromisoformat(h[2]) for h in batch if h[0] == "clicked" and h[3] is None
        }
        if clicks:
            _flag_bursts(conn, clicks)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _parse(line: bytes, key: str) -> tuple | None:
    """(kind, message id, ISO time, reason, detail, scan seconds, key), or None if unreadable."""
    try:
        version, kind, message_id, at, reason, detail, window = json.loads(line)
    except ValueError:
        return None
    if version != VERSION or kind not in STATEMENTS or not isinstance(message_id, int):
        return None
    return kind, message_id, at, reason, detail, window, key


def _line(hit: tuple) -> bytes:
    kind, message_id, at, reason, detail, window, _key = hit
    return json.dumps([VERSION, kind, message_id, at, reason, detail, window]).encode()


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
