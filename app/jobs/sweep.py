"""The sweeper: PostgreSQL is the truth, so anything due or stuck there gets queued again."""

from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, or_, select, update

from app import clock
from app.extensions import db, redis
from app.jobs import with_app_context
from app.models import Campaign, Event, Message, MessageStatus, Organization
from app.queues import send_queue

log = logging.getLogger(__name__)
LAST_RUN_KEY = "herald:sweeper:last_run"
DISPATCH_JOB = "herald-dispatch"
DISPATCH_ALIVE_KEY = "herald:dispatch:alive"
GAVE_UP = "Gave up: the worker sending this email stopped responding on every attempt."


def _dispatcher_pending() -> bool:
    """A dispatcher is already queued or running: one is enough (it drains everything due)."""
    try:
        job = Job.fetch(DISPATCH_JOB, connection=redis.client)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.STARTED:  # running, unless its worker was killed (no more beats)
        return bool(redis.client.exists(DISPATCH_ALIVE_KEY))
    return status == JobStatus.QUEUED


def dispatcher_alive() -> None:
    """Called by a running dispatcher between batches: 'I am still here'."""
    ttl = max(10, int(current_app.config["SEND_LEASE_SECONDS"]))
    try:
        redis.client.set(DISPATCH_ALIVE_KEY, 1, ex=ttl)
    except RedisError:
        pass


def release_expired_leases() -> int:
    """sending rows whose lease ran out (a worker died) go back to queued, or to failed once they
    have used every attempt (a message that kills its worker must not loop forever). They keep
    the time they were due, so the claim (oldest due first) takes them before rows that became due
    after them: a throttled backlog does not push them to its end. Commits."""
    now = clock.now()
    # the org's own retries (Settings → Delivery), like any other failure of its messages
    limit = (
        select(Organization.max_retries + 1)
        .where(Organization.id == Message.org_id)
        .scalar_subquery()
    )
    expired = (Message.status == MessageStatus.SENDING, Message.lease_until < now)
    failed = db.session.execute(
        update(Message)
        .where(*expired, Message.attempts >= limit)
        .values(status=MessageStatus.FAILED, lease_until=None, lease_token=None, last_error=GAVE_UP)
        .returning(Message.id, Message.org_id)
    ).all()
    rows = db.session.execute(
        update(Message)
        .where(*expired)
        .values(
            status=MessageStatus.QUEUED,
            lease_until=None,
            lease_token=None,
            send_after=func.least(Message.send_after, now),
        )
        .returning(Message.id, Message.org_id)
    ).all()
    for message_id, org_id in failed:
        db.session.add(
            Event(org_id=org_id, message_id=message_id, type="failed", detail={"reason": GAVE_UP})
        )
    for message_id, org_id in rows:
        db.session.add(Event(org_id=org_id, message_id=message_id, type="lease_expired"))
    db.session.commit()
    return len(rows) + len(failed)


def due_count() -> int:
    """How many queued rows are due now."""
    held = select(Campaign.id).where(Campaign.status.in_(["paused", "cancelled"]))
    query = select(func.count()).where(
        Message.status == MessageStatus.QUEUED,
        Message.send_after <= clock.now(),
        or_(
            Message.campaign_id.is_(None),
            Message.kind.in_(  # notices go even when cancelled
                ["cancelled", "rescheduled", "booking_confirmation", "booking_cancelled"]
            ),
            Message.campaign_id.not_in(held),
        ),
    )
    return db.session.scalar(query) or 0


@with_app_context
def sweep() -> dict[str, int]:
    """Release expired leases, then queue a dispatcher if anything is due."""
    released = release_expired_leases()
    due = due_count()
    if due and not _dispatcher_pending():
        send_queue().enqueue("app.jobs.send.dispatch_due", job_id=DISPATCH_JOB, job_timeout=1800)
    redis.client.set(LAST_RUN_KEY, clock.now().isoformat())
    if released or due:
        log.info("sweeper: %d lease(s) released, %d message(s) due", released, due)
    return {"released": released, "due": due}
