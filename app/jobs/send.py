"""Send jobs: one job sends a batch, never one message per job."""

from __future__ import annotations

import time
from collections import Counter

from flask import current_app
from redis.exceptions import RedisError

from app.extensions import db
from app.jobs import with_app_context
from app.mail import sending
from app.queues import send_queue


@with_app_context
def send_messages(message_ids: list[int]) -> dict[str, int]:
    """Claim these messages (those still queued and due) and send them."""
    claimed, token = sending.claim(len(message_ids), ids=message_ids)
    return sending.send_claimed(claimed, token)


@with_app_context
def dispatch_due(
    max_batches: int = 50,
    max_seconds: float | None = None,
    woken_for: int | None = None,
    lane: str = "bulk",
) -> dict[str, int]:
    """Claim due messages in batches and send them until none are left, for at most max_seconds
    (DISPATCH_MAX_SECONDS). One that stops with work left queues its successor at the back of the
    send queue (unless SEND_DISPATCHERS jobs wait there already: the queue must not grow): a long
    backlog takes turns with other jobs instead of holding a worker for long. `woken_for` (and
    `lane`) name the org and lane whose delayed wake-up this is."""
    from app.jobs.sweep import dispatcher_alive

    if woken_for is not None:  # this is the org's delayed dispatcher (for one of its lanes)
        sending.woken(woken_for, lane)
    if max_seconds is None:
        max_seconds = current_app.config["DISPATCH_MAX_SECONDS"]
    stop_at = time.monotonic() + max_seconds
    totals: Counter[str] = Counter()
    more = False
    for _ in range(max_batches):
        dispatcher_alive()
        claimed, token = sending.claim(current_app.config["SEND_BATCH_SIZE"])
        if not claimed:
            break
        totals.update(sending.send_claimed(claimed, token))
        if time.monotonic() >= stop_at:
            more = True
            break
    else:
        more = True
    if more and _waiting() < current_app.config["SEND_DISPATCHERS"]:
        _enqueue_dispatcher(max_batches)
    elif woken_for is not None:
        sending.rearm(woken_for)
    _finish_campaigns()
    return dict(totals)


def _waiting() -> int:
    try:
        return send_queue().count
    except RedisError:
        return 0


def _enqueue_dispatcher(max_batches: int) -> None:
    try:
        send_queue().enqueue("app.jobs.send.dispatch_due", max_batches, job_timeout=1800)
    except RedisError:
        pass  # the sweeper dispatches due rows anyway


def _finish_campaigns() -> None:
    """A campaign whose last message was just handled shows as sent now, not at the next
    periodic check (which remains the safety net)."""
    from app.campaigns.services import finish_done

    finish_done()
    db.session.commit()
