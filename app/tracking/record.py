"""Recording opens and clicks: each hit is spooled by this process's writer (app/tracking/spool.py:
durable once answered) and stored in batches by its thread (app/tracking/store.py)."""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.engine import URL, make_url

from app.tracking.spool import Spool
from app.tracking.store import HitStore

_lock = threading.Lock()


def _spool_dir(app: Flask, url: URL) -> Path:
    """Per database: a spool is only ever stored into the database it was written for."""
    where = f"{url.host}:{url.port}/{url.database}"
    tag = hashlib.sha256(where.encode()).hexdigest()[:12]
    return Path(app.config["TRACKING_SPOOL_DIR"]) / tag


def writer(app: Flask | None = None) -> Spool:
    """This process's spool and writer for the app's database (a new one after a fork)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: Spool | None = app.extensions.get("herald_hit_writer")
    if found is None or found.pid != os.getpid():
        with _lock:
            found = app.extensions.get("herald_hit_writer")
            if found is None or found.pid != os.getpid():
                url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
                store = HitStore(url.render_as_string(hide_password=False))
                found = Spool(_spool_dir(app, url), store)
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
