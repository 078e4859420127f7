"""The sweeper's periodic job (see app/outbox/sweep.py)."""

from __future__ import annotations

from app.extensions import db
from app.jobs import with_app_context
from app.outbox import sweep as sweeper
from app.outbox.sweep import LAST_RUN_KEY

__all__ = ["LAST_RUN_KEY", "sweep"]


@with_app_context
def sweep() -> dict[str, int]:
    """Release expired leases and wake dispatchers for due rows; commits."""
    counts = sweeper.sweep()
    db.session.commit()
    return counts
