"""The sweeper: PostgreSQL is the truth, so anything due or stuck there gets queued again."""

from __future__ import annotations

import logging

from sqlalchemy import func, select, update

from app import clock
from app.extensions import db, redis
from app.jobs import with_app_context
from app.jobs.queues import send_queue
from app.models import Event, Message, MessageStatus

log = logging.getLogger(__name__)
LAST_RUN_KEY = "herald:sweeper:last_run"


def release_expired_leases() -> int:
    """sending rows whose lease ran out (a worker died) go back to queued. Commits."""
    now = clock.now()
    rows = db.session.execute(
        update(Message)
        .where(Message.status == MessageStatus.SENDING, Message.lease_until < now)
        .values(status=MessageStatus.QUEUED, lease_until=None, send_after=now)
        .returning(Message.id, Message.org_id)
    ).all()
    for message_id, org_id in rows:
        db.session.add(Event(org_id=org_id, message_id=message_id, type="lease_expired"))
    db.session.commit()
    return len(rows)


def due_count() -> int:
    """How many queued rows are due now."""
    query = select(func.count()).where(
        Message.status == MessageStatus.QUEUED, Message.send_after <= clock.now()
    )
    return db.session.scalar(query) or 0


@with_app_context
def sweep() -> dict[str, int]:
    """Release expired leases, then queue a dispatcher if anything is due."""
    released = release_expired_leases()
    due = due_count()
    if due:
        send_queue().enqueue("app.jobs.send.dispatch_due", job_timeout=1800)
    redis.client.set(LAST_RUN_KEY, clock.now().isoformat())
    if released or due:
        log.info("sweeper: %d lease(s) released, %d message(s) due", released, due)
    return {"released": released, "due": due}
