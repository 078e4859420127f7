"""The sweeper: PostgreSQL is the truth, so anything due or stuck there gets sent again.

Expired leases (a worker died) are released, and dispatchers are woken when rows are due.
The periodic job (app/jobs/sweep.py) calls sweep() and commits.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy import func, select

from app import clock
from app.extensions import db, redis
from app.models import Message
from app.outbox import queue, transitions

log = logging.getLogger(__name__)
LAST_RUN_KEY = "herald:sweeper:last_run"


def due_count() -> int:
    """How many queued rows are due now and not held (what a claim would take)."""
    return db.session.scalar(select(func.count()).select_from(Message).where(*transitions.due()))


def sweep() -> dict[str, int]:
    """Release expired leases, then wake dispatchers if anything is due (no commit)."""
    released = transitions.expire_leases()
    due = due_count()
    if due:
        queue.wake()  # (none added when enough wait in the send queue already)
    try:
        redis.client.set(LAST_RUN_KEY, clock.now().isoformat())
    except RedisError:
        pass
    if released or due:
        log.info("sweeper: %d lease(s) released, %d message(s) due", released, due)
    return {"released": released, "due": due}
