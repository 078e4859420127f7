"""Send due messages: claim → begin → build → provider.send → record, one message at a time per
sender, SEND_CONCURRENCY senders per worker.

A sender claims a few due rows under a lease token (transitions.claim), transactional mail
first: a transactional row that comes due is taken by the next claim of any sender (each takes
SEND_BATCH_SIZE / SEND_CONCURRENCY rows at a time), whatever bulk mail waits. For each row, in
order: the rates its lane is charged to are asked (throttle.take); the begin locks the row,
checks the per-candidate cap (bulk mail only) and that the message is still sendable, and counts
the attempt (transitions.begin, committed); the message is rendered from its pinned template
version and serialized (build.outgoing_for, the same code as the preview and the test send); the
org's providers are tried in turn while one is in trouble (routing.Failover); the answer is
recorded and committed at once (transitions). A killed worker therefore repeats at most the one
message each of its senders had on the wire, and a sender that lost its lease (it stalled past
SEND_LEASE_SECONDS) changes nothing and sends nothing more: every step checks the token.

Each sender is a thread with its own app context, so its own database session, and its own
provider connections (routing.Connections). The rate buckets, the breakers and the cap live in
Redis and PostgreSQL, shared by every sender of every worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import select, text

from app import clock
from app.extensions import db
from app.mail import metrics
from app.mail.build import outgoing_for
from app.models import Lane, Message, MessageStatus, Organization
from app.outbox import queue, throttle, transitions
from app.outbox.throttle import Charge
from app.outbox.transitions import Claim
from app.providers import Accepted, Transient
from app.providers.routing import Connections, Failover, Outcome

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    """One sender's claim as it goes: its failover state, and buckets (an org's, per lane) whose
    rate is used up."""

    claim: Claim
    failover: Failover
    waiting: dict[Charge, datetime] = field(default_factory=dict)  # when it has a token again
    later: dict[Charge, list[int]] = field(default_factory=dict)  # rows put back then
    counts: Counter = field(default_factory=Counter)


def send_claimed(claim: Claim, connections: Connections | None = None) -> dict[str, int]:
    """Send a claim's messages one by one, committing each result at once. An org whose rate
    (of a lane) is used up has its rows of that lane put back for when its bucket refills (one
    delayed dispatcher per org and lane)."""
    own = connections is None
    batch = _Batch(claim, Failover(connections or Connections()))
    charges = _charges(claim)
    done = 0
    try:
        for message_id, org_id in claim.rows:
            charge = charges[message_id]
            if charge in batch.waiting:
                batch.later.setdefault(charge, []).append(message_id)
                batch.counts["deferred"] += 1
            else:
                outcome = _send_one(batch, message_id, org_id, charge)
                batch.counts[outcome or "skipped"] += 1
            done += 1
    finally:
        db.session.rollback()
        _put_back(batch, claim.ids[done:])
        metrics.flush()
        if own:
            batch.failover.connections.close()
    log.info("batch done: %s", dict(batch.counts))
    return dict(batch.counts)


def _charges(claim: Claim) -> dict[int, Charge]:
    """Whose buckets each claimed row is charged to (its org's, in its lane; account mail to no
    org's), from what the claim returned (else read, as for a claim made by hand)."""
    kinds = dict(claim.kinds)
    missing = [id_ for id_ in claim.ids if id_ not in kinds]
    if missing:
        found = select(Message.id, Message.kind, Message.lane).where(Message.id.in_(missing))
        kinds.update({id_: (kind, lane) for id_, kind, lane in db.session.execute(found)})
    return {
        id_: throttle.charge_for(org_id, *kinds.get(id_, ("", Lane.BULK)))
        for id_, org_id in claim.rows
    }


def _put_back(batch: _Batch, unreached: list[int]) -> None:
    """Rows of a waiting bucket go back at its time (and wake the org's lane then); rows not
    reached after an error go back shortly."""
    for charge, ids in batch.later.items():
        transitions.release(ids, batch.claim.token, batch.waiting[charge])
    soon = clock.now() + timedelta(seconds=transitions.backoff_seconds(1))
    transitions.release(unreached, batch.claim.token, soon)
    db.session.commit()
    wake: dict[tuple[int, str], datetime] = {}  # per org and lane, its first bucket to refill
    for charge, when in batch.waiting.items():
        if charge.org_id is not None:
            at = (charge.org_id, charge.lane)
            wake[at] = min(when, wake.get(at, when))
    for (org_id, lane), when in wake.items():
        queue.wake_at(org_id, when, lane)


def _send_one(batch: _Batch, message_id: int, org_id: int, charge: Charge) -> str | None:
    """Throttle, begin, build, send with failover, record: one message, its result committed."""
    token = batch.claim.token
    org = db.session.get(Organization, org_id)
    routes = batch.failover.usable(org_id)
    if not routes:  # every provider failed in this batch or has its breaker open
        wait = batch.failover.reopens_in(org_id) or transitions.backoff_seconds(1)
        transitions.release([message_id], token, clock.now() + timedelta(seconds=wait))
        db.session.commit()
        return "deferred"
    wait = throttle.take(charge, org.send_rate_per_minute, routes[0].key)
    if wait > 0:
        batch.waiting[charge] = clock.now() + timedelta(seconds=wait)
        batch.later.setdefault(charge, []).append(message_id)
        return "deferred"
    message = _begin(message_id, token, org)
    if message is None or message.status != MessageStatus.SENDING:
        return message.status if message is not None else None
    try:
        outgoing, subject = outgoing_for(message)
    except Exception as exc:  # noqa: BLE001 - one bad message must not stall the batch
        db.session.rollback()
        return _unbuildable(message_id, token, exc)
    outcome = batch.failover.send(
        outgoing,
        routes,
        still_ours=lambda: _renew(message_id, token),
        busy=lambda key: throttle.take(Charge(None, charge.lane), 0, key),
    )
    return _record(message_id, token, outcome, org.max_retries, subject)


def _begin(message_id: int, token: str, org: Organization) -> Message | None:
    """The held row, begun (status still 'sending'), or what stopped it; None if the lease was
    lost or the candidate's cap holds it back. Commits."""
    message = transitions.held_row(message_id, token)
    if message is None:
        db.session.rollback()
        log.warning("message %s: lease lost before sending; skipped", message_id)
        return None
    if transitions.over_cap(message, token, org.candidate_daily_cap):
        db.session.commit()
        return None
    transitions.begin(message, token)
    # the attempt count need not survive a database crash; the outcome (in _record) does
    db.session.execute(text("SET LOCAL synchronous_commit = off"))
    db.session.commit()
    return message


def _renew(message_id: int, token: str) -> bool:
    renewed = transitions.renew(message_id, token)
    db.session.commit()
    return renewed


def _unbuildable(message_id: int, token: str, exc: Exception) -> str | None:
    message = transitions.held_row(message_id, token)
    if message is None:
        db.session.rollback()
        return None
    transitions.unbuildable(message, exc)
    db.session.commit()
    return "failed"


def _record(
    message_id: int, token: str, outcome: Outcome, max_retries: int, subject: str | None
) -> str | None:
    """Write what the providers answered, only if the lease still holds; commits."""
    message = transitions.held_row(message_id, token)
    if message is None:
        db.session.rollback()
        log.warning("message %s: lease lost before its result was recorded", message_id)
        return None
    message.subject = subject
    *before, last = outcome.attempts
    tried = outcome.attempts if outcome.busy_wait is not None else before
    transitions.failovers(message, [(a.route.label, a.result.reason) for a in tried])
    if outcome.busy_wait is not None:  # the next provider was busy: not one of its retries
        transitions.busy(message, token, outcome.busy_wait)
        db.session.commit()
        return "deferred"
    provider = (last.route.name, last.route.account_id, last.route.label)
    result = last.result
    if isinstance(result, Accepted):
        transitions.sent(message, provider, result, last.ms)
        db.session.commit()
        return "sent"
    if isinstance(result, Transient) and result.retry_after and not result.provider_trouble:
        throttle.pause(last.route.key, result.retry_after)  # a 429: nobody sends there a while
    said = transitions.not_sent(message, provider, result, max_retries)
    db.session.commit()
    return said


# ---- senders -------------------------------------------------------------------------------------


def _sender(stop_at: float, batch_size: int) -> tuple[Counter, bool]:
    """One sender: claim a few due rows, send them, again, until none are due or time is up."""
    connections = Connections()
    totals: Counter = Counter()
    try:
        while True:
            claim = transitions.claim(batch_size)
            db.session.commit()
            if not claim.rows:
                return totals, False
            totals.update(send_claimed(claim, connections))
            if time.monotonic() >= stop_at:
                return totals, True
    finally:
        connections.close()


def _in_thread(app: Flask, stop_at: float, batch_size: int, out: list) -> None:
    """A sender thread: its own app context, so its own session, removed at the end."""
    with app.app_context():
        try:
            out.append(_sender(stop_at, batch_size))
        except Exception:  # noqa: BLE001 - its leases expire and the sweeper takes over
            log.exception("a sender stopped")
            out.append((Counter(), True))
        finally:
            db.session.remove()


def dispatch(max_seconds: float) -> tuple[dict[str, int], bool]:
    """Send due messages on SEND_CONCURRENCY senders for at most max_seconds: the totals, and
    whether due rows may be left."""
    cfg = current_app.config
    senders = max(1, min(cfg["SEND_CONCURRENCY"], cfg["SEND_BATCH_SIZE"]))
    batch_size = max(1, cfg["SEND_BATCH_SIZE"] // senders)  # a round claims SEND_BATCH_SIZE
    stop_at = time.monotonic() + max_seconds
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    out: list[tuple[Counter, bool]] = []
    threads = [
        threading.Thread(target=_in_thread, args=(app, stop_at, batch_size, out), daemon=True)
        for _ in range(senders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals: Counter = Counter()
    for counts, _ in out:
        totals.update(counts)
    return dict(totals), any(more for _, more in out)
