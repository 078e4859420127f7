"""The dispatcher job: sends due messages on SEND_CONCURRENCY senders (see app/outbox/send.py)."""

from __future__ import annotations

from flask import current_app

from app.campaigns.services import finish_done
from app.extensions import db
from app.jobs import with_app_context
from app.outbox import queue, send


@with_app_context
def dispatch_due(
    max_seconds: float | None = None, woken_for: int | None = None, lane: str = "bulk"
) -> dict[str, int]:
    """Send what is due for at most max_seconds (DISPATCH_MAX_SECONDS). One that stops with work
    left wakes a successor at the back of the send queue: a long backlog takes turns with other
    jobs instead of holding a worker for long. `woken_for` (and `lane`) name the org and lane
    whose delayed wake-up this is."""
    if woken_for is not None:  # this is the org's delayed dispatcher (for one of its lanes)
        queue.woken(woken_for, lane)
    if max_seconds is None:
        max_seconds = current_app.config["DISPATCH_MAX_SECONDS"]
    totals, more = send.dispatch(max_seconds)
    if more:
        queue.wake()
    elif woken_for is not None:
        queue.rearm(woken_for, lane)
    finish_done()  # a campaign whose last message was just handled shows as sent now
    db.session.commit()
    return totals
