"""The transactional outbox: a message is a row before anything is queued.

queue_message() adds the row in the caller's transaction. Only after that transaction commits is a
dispatcher woken (wake()); if Redis is down or flushed, the sweeper finds the rows later. wake()
is the one way to ask for dispatchers now; wake_at() the one way for later (an org whose rate is
used up waits for its bucket to refill).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from app import clock
from app.extensions import db, redis
from app.models import Event, Lane, Message, Organization
from app.outbox.spec import MessageSpec
from app.outbox.transitions import record_events
from app.queues import send_queue

log = logging.getLogger(__name__)
_PENDING = "herald_outbox_ids"


def queue_message(
    *,
    org_id: int,
    kind: str,
    template: str,
    to_email: str,
    context: dict[str, Any] | None = None,
    **fields: Any,
) -> Message:
    """Add a queued message (and its 'queued' event) to the current transaction; `fields` are
    MessageSpec's (to_name, created_by_id, idempotency_key, send_after, ...)."""
    spec = MessageSpec.of(
        context, org_id=org_id, kind=kind, template=template, to_email=to_email, **fields
    )
    return queue(spec)


def queue(spec: MessageSpec) -> Message:
    """Add the message a spec describes (and its 'queued' event) to the current transaction."""
    # org-branded mail carries the org's domain; Herald's own mail (resets, invites) ours
    org = db.session.get(Organization, spec.org_id) if spec.template == "version" else None
    message = Message(**spec.columns(org, clock.now()))
    db.session.add(message)
    db.session.flush()
    db.session.add(Event(org_id=spec.org_id, message_id=message.id, type="queued"))
    db.session.info[_PENDING] = True
    return message


DISPATCH = "app.jobs.send.dispatch_due"
DISPATCH_TIMEOUT = 1800


def wake(wanted: int | None = None) -> None:
    """Dispatchers now: enough to have `wanted` (SEND_DISPATCHERS: one per worker, they share
    rows with SKIP LOCKED) waiting in the send queue, never more. Redis away: the sweeper wakes
    them."""
    wanted = wanted or current_app.config["SEND_DISPATCHERS"]
    try:
        queue = send_queue()
        missing = wanted - queue.count
        if missing > 0:
            queue.enqueue_many(
                [Queue.prepare_data(DISPATCH, timeout=DISPATCH_TIMEOUT) for _ in range(missing)]
            )
    except RedisError:
        log.warning("could not wake a dispatcher; the sweeper will")


kick_dispatcher = wake  # (the name the features know)


def _wait_key(org_id: int, lane: str = Lane.BULK) -> str:
    """One per org and lane: a bulk wake-up a minute away never holds transactional mail."""
    if lane == Lane.TRANSACTIONAL:
        return f"herald:dispatch:org:{org_id}:transactional:waiting"
    return f"herald:dispatch:org:{org_id}:waiting"


def wake_at(org_id: int, when: datetime, lane: str = Lane.BULK) -> None:
    """The org's one delayed dispatcher for a lane, for when its buckets have refilled (RQ's
    scheduler); the transactional one's job says so (`lane`), the bulk one's does not.
    A Redis key set only if absent says one waits: another batch that hits the rate meanwhile
    adds none. The dispatcher clears the key as it starts; should the wake-up be lost (Redis
    flushed, worker killed), the key expires and the sweeper dispatches the due rows."""
    delay = max(0.0, (when - clock.now()).total_seconds())
    expires = int(delay) + 2 * current_app.config["SWEEP_INTERVAL_SECONDS"]
    try:
        if redis.client.set(_wait_key(org_id, lane), 1, nx=True, ex=max(1, expires)):
            lanes = {"lane": Lane.TRANSACTIONAL.value} if lane == Lane.TRANSACTIONAL else {}
            # RQ schedules to the whole second: a second later, the rows are surely due
            send_queue().enqueue_at(
                when + timedelta(seconds=1),
                DISPATCH,
                woken_for=org_id,
                job_timeout=DISPATCH_TIMEOUT,
                **lanes,
            )
    except RedisError:
        pass  # the sweeper dispatches due rows anyway


def woken(org_id: int, lane: str = Lane.BULK) -> None:
    """The org's delayed dispatcher (for a lane) has started: the next batch that hits that
    lane's rate may add one."""
    try:
        redis.client.delete(_wait_key(org_id, lane))
    except RedisError:
        pass


_NEXT_DUE = text(
    "SELECT min(send_after) FROM messages"
    " WHERE org_id = :org AND lane = :lane AND status = 'queued' AND send_after > :now"
)


def rearm(org_id: int, lane: str = Lane.BULK) -> None:
    """After the org's delayed dispatcher (for a lane) ran: wake again for its next queued row
    of that lane if one comes due within a sweep (rows further out are the sweeper's). Rows due
    already but not claimed wait for something else (a paused campaign): no wake-up for them."""
    now = clock.now()
    params = {"org": org_id, "lane": str(lane), "now": now}
    next_due = db.session.execute(_NEXT_DUE, params).scalar()
    db.session.rollback()
    horizon = timedelta(seconds=current_app.config["SWEEP_INTERVAL_SECONDS"])
    if next_due is not None and next_due - now < horizon:
        wake_at(org_id, next_due, lane)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    """Newly committed messages: wake a dispatcher (ids stay in PostgreSQL)."""
    if session.info.pop(_PENDING, None) and has_app_context():
        wake(1)  # (a campaign's launch asks for one per worker)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    """Rows that were rolled back need no dispatcher."""
    session.info.pop(_PENDING, None)


__all__ = [
    "MessageSpec",
    "kick_dispatcher",
    "queue",
    "queue_message",
    "record_events",
    "wake",
    "wake_at",
]
