"""Background CSV import of candidates."""

from __future__ import annotations

import logging

from app.candidates import importer
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
        importer.run(item)
    except Exception as exc:  # noqa: BLE001 - the user must see that it stopped, and why
        db.session.rollback()
        log.exception("import %s failed", import_id)
        item = db.session.get(CandidateImport, import_id)
        item.status = "failed"
        item.error = f"The import stopped: {exc.__class__.__name__}. Rows already imported stay."
        db.session.commit()
