"""Background CSV import of candidates, and the periodic deletion of uploads left unfinished."""

from __future__ import annotations

import logging

from flask import current_app

from app.candidates import importer, uploads
from app.extensions import db
from app.jobs import with_app_context
from app.models import CandidateImport

log = logging.getLogger(__name__)


@with_app_context
def run_import(import_id: int) -> None:
    """Import one mapped upload; a crash marks it failed with a readable reason."""
    item = db.session.get(CandidateImport, import_id)
    if item is None or item.status not in ("queued", "running"):
        return
    try:
        for _ in importer.run(item):
            db.session.commit()  # the progress so far (each batch), visible while it runs
    except Exception as exc:  # noqa: BLE001 - the user must see that it stopped, and why
        db.session.rollback()
        log.exception("import %s failed", import_id)
        item = db.session.get(CandidateImport, import_id)
        item.status = "failed"
        item.error = f"The import stopped: {exc.__class__.__name__}. Rows already imported stay."
        uploads.discard(import_id)
        db.session.commit()


@with_app_context
def discard_stale_uploads() -> int:
    """Periodic: close imports unfinished a day (IMPORT_UPLOAD_KEEP_SECONDS) after their upload,
    and delete their files. How many imports lost their file."""
    count = uploads.discard_stale(current_app.config["IMPORT_UPLOAD_KEEP_SECONDS"])
    db.session.commit()
    return count
