"""The hits' spool: what makes an answered open or click durable before it is stored.

A hit is one line appended (`write(2)`, O_APPEND) to this process's spool file, and then answered:
the bytes are the kernel's from that moment, so a killed process (even `kill -9`) loses no
answered hit. The process's writer thread reads what was appended and hands it to the store
(app/tracking/store.py), whose rows are keyed by spool file and offset, so storing a stretch
again is a no-op: a spool left by a dead process (its lock is free) is adopted and replayed by
the next writer that starts on the same instance directory, then deleted. A fully stored spool
is rotated. With TRACKING_WAIT_FOR_STORE (tests), a request waits until its own hit is stored.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from app import clock
from app.tracking.store import KINDS, Hit, HitStore

log = logging.getLogger(__name__)
MAX_READ = 4 * 1024 * 1024  # bytes of spool read and stored per round
ROTATE_BYTES = 8 * 1024 * 1024  # a fully stored spool this big is replaced by a new one
ADOPT_EVERY = 30.0  # seconds between looks for dead processes' spools
WAIT_SECONDS = 10.0  # TRACKING_WAIT_FOR_STORE: how long a request waits for its hit
VERSION = 1  # of a spool line: [VERSION, kind, message id, ISO time, reason, detail, scan seconds]


@dataclass(eq=False)
class Segment:
    """One spool file: `base` is the total offset of its first byte, `end` its last (set when a
    newer file took over; None while hits are appended to it)."""

    path: Path
    fd: int
    base: int
    end: int | None = None


class Spool:
    """One per process and database: the spool files, and the thread that hands them to the
    store."""

    def __init__(self, spool_dir: Path, store: HitStore) -> None:
        self.dir = spool_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.pid = os.getpid()
        self.lock = threading.Lock()  # appends and rotation
        self.stored = threading.Condition()  # waiters for TRACKING_WAIT_FOR_STORE
        self.wake = threading.Event()
        self.store_lock = threading.RLock()  # one storer (and user of the store's connection)
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
        """Append one hit; once this returns it survives the process. OSError: not spooled."""
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
                self.store.reset()
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
        """Hand a stretch of spool lines to the store; unreadable or refused ones are set aside."""
        with self.store_lock:
            hits: list[Hit] = []
            bad: list[Hit | bytes] = []
            for line in data.split(b"\n"):
                if line:
                    hit = _parse(line, f"hit:{name}:{offset}")
                    (hits if hit else bad).append(hit or line)
                offset += len(line) + 1
            if hits:
                bad += self.store.store(hits)
            if bad:
                self._set_aside(name, bad)

    def _set_aside(self, name: str, lines: list[Hit | bytes]) -> None:
        """Lines that cannot be stored go to <spool>.bad, next to the spool, and are logged:
        the rest is stored, nothing waits behind them and nothing is silently dropped."""
        log.error("tracking: %d spool lines could not be stored; kept in %s.bad", len(lines), name)
        with open(self.dir / f"{name}.bad", "ab") as f:
            for line in lines:
                f.write(line if isinstance(line, bytes) else _line(line))
                f.write(b"\n")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _parse(line: bytes, key: str) -> Hit | None:
    """The hit a spool line holds, keyed by where it is; None if unreadable."""
    try:
        version, kind, message_id, at, reason, detail, window = json.loads(line)
    except (ValueError, TypeError):  # not JSON, or not a line of seven
        return None
    if version != VERSION or kind not in KINDS or not isinstance(message_id, int):
        return None
    return Hit(kind, message_id, at, reason, detail, window, key)


def _line(hit: Hit) -> bytes:
    """A hit as its spool line again (for the .bad file)."""
    return json.dumps(
        [VERSION, hit.kind, hit.message_id, hit.at, hit.reason, hit.detail, hit.scan_s]
    ).encode()
