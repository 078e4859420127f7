"""Claim due messages, send them through the provider, record each result at once.

A claim stamps a lease token on the rows. Just before each message goes to the provider the worker
re-checks that it still holds that row (and counts the attempt); every result is written only while
the token still matches. A worker that lost its lease (slow server, pause, expiry) therefore skips
the message instead of sending it twice, and never overwrites another worker's outcome.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import and_, func, select, text
from sqlalchemy import event as sa_event

from app import clock
from app.extensions import db, redis
from app.mail import metrics, rows, throttle
from app.mail.build import envelope_sender, outgoing_for
from app.mail.delivery import Attempt, Failover, Route
from app.mail.fastpath import FastPath, sent_events
from app.mail.rows import seed
from app.models import (
    Campaign,
    Event,
    Invitation,
    Lane,
    Message,
    MessageStatus,
    Organization,
    Suppression,
)
from app.providers import Accepted, OutgoingMessage, Permanent, Transient, Withheld
from app.queues import send_queue
from app.suppressions.rules import blocks

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    UPDATE messages SET status = 'sending', lease_until = :lease_until, lease_token = :token
    WHERE id IN (
        SELECT id FROM messages
        WHERE status = 'queued' AND send_after <= :now AND (:all_ids OR id = ANY(:ids))
          AND (campaign_id IS NULL OR kind IN ('cancelled', 'rescheduled') OR NOT EXISTS (
              SELECT 1 FROM campaigns c
              WHERE c.id = messages.campaign_id AND c.status IN ('paused', 'cancelled')))
        ORDER BY (lane = 'bulk'), send_after, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING id, lane
    """
)
_RELEASE = text(
    """
    UPDATE messages SET status = 'queued', lease_until = NULL, lease_token = NULL,
        send_after = :send_after
    WHERE id = ANY(:ids) AND status = 'sending' AND lease_token = :token
    """
)


def _lease_seconds() -> float:
    return current_app.config["SEND_LEASE_SECONDS"]


def claim(limit: int, ids: Sequence[int] | None = None) -> tuple[list[int], str]:
    """queued → sending under a new lease token, for due rows no other worker holds; transactional
    rows first, in the claim and in the order returned (the order they are sent). Commits."""
    now = clock.now()
    token = uuid.uuid4().hex
    params = {
        "now": now,
        "lease_until": now + timedelta(seconds=_lease_seconds()),
        "limit": limit,
        "token": token,
        "all_ids": ids is None,
        "ids": list(ids or []),
    }
    claimed = [(lane == Lane.BULK, id_) for id_, lane in db.session.execute(_CLAIM, params)]
    db.session.commit()
    return [id_ for _, id_ in sorted(claimed)], token


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter in [0.5, 1.5) of base * 2^(attempt-1)."""
    base = current_app.config["RETRY_BASE_SECONDS"] * 2 ** (attempt - 1)
    return base * (0.5 + random.random())


def _held(message_id: int, token: str) -> Message | None:
    """The row, locked and refreshed, if this worker's lease token still holds it."""
    query = (
        select(Message)
        .where(
            Message.id == message_id,
            Message.status == MessageStatus.SENDING,
            Message.lease_token == token,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return db.session.scalars(query).first()


def _begin(message_id: int, token: str) -> Message | None:
    """Count the attempt and renew the lease just before sending; None if the lease was lost.
    One locking query reads the row with what could stop it (suppression, campaign, answer)."""
    row = db.session.execute(
        select(Message, Campaign.status, Invitation, Suppression)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .outerjoin(Invitation, Invitation.id == Message.invitation_id)
        .outerjoin(
            Suppression,
            and_(
                Suppression.org_id == Message.org_id,
                Suppression.email == func.lower(func.trim(Message.to_email)),
            ),
        )
        .where(
            Message.id == message_id,
            Message.status == MessageStatus.SENDING,
            Message.lease_token == token,
        )
        .with_for_update(of=Message)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        db.session.rollback()
        log.warning("message %s: lease lost before sending; skipped", message_id)
        return None
    message, campaign_status, invitation, suppression = row
    answer = invitation.status if invitation is not None else None
    if suppression is not None and blocks(suppression, message.kind, message.lane):
        message.status = MessageStatus.SUPPRESSED
        message.lease_until, message.lease_token = None, None
        message.last_error = f"Not sent: the address is suppressed ({suppression.reason})."
        _event(message, "suppressed", reason=suppression.reason, scope=suppression.scope)
        db.session.commit()
        return message
    stop = _no_longer_wanted(message, campaign_status, answer)
    if stop:
        message.lease_until, message.lease_token = None, None
        if stop == "paused":
            message.status = MessageStatus.QUEUED
        else:
            message.status = MessageStatus.CANCELLED
            _event(message, "cancelled", reason=stop)
        db.session.commit()
        return None
    message.attempts += 1
    message.lease_until = clock.now() + timedelta(seconds=_lease_seconds())
    # the attempt count need not survive a database crash; the outcome (in _record) does
    db.session.execute(text("SET LOCAL synchronous_commit = off"))
    db.session.commit()
    return message


def _no_longer_wanted(message: Message, status: str | None, answer: str | None) -> str | None:
    """Re-checked just before sending (a claim can be older than a cancel, pause or answer):
    'paused', a reason to cancel, or None. Cancelled/rescheduled notices always go."""
    if message.campaign_id is None or message.kind in ("cancelled", "rescheduled"):
        return None
    if status == "paused":
        return "paused"
    if status == "cancelled":
        return "The campaign was cancelled."
    if message.invitation_id is not None:
        if answer in ("revoked", "superseded"):
            return f"The invitation was {answer}."
        if message.kind == "reminder" and answer in ("accepted", "declined"):
            return f"The candidate already {answer}."
    return None


def _event(message: Message, type_: str, **detail: object) -> None:
    db.session.add(Event(org_id=message.org_id, message_id=message.id, type=type_, detail=detail))


def _apply(message: Message, attempts: list[Attempt], max_retries: int) -> str:
    """Write one message's provider answers on its held row: sent, retry later, or failed."""
    now = clock.now()
    message.lease_until = None
    message.lease_token = None
    for tried in attempts[:-1]:  # providers that failed before the last one answered
        _event(message, "failover", provider=tried.route.label, reason=tried.result.reason)
    last = attempts[-1]
    result = last.result
    message.provider = last.route.name
    message.provider_account_id = last.route.account_id
    label = last.route.label
    if isinstance(result, Accepted):
        message.status = MessageStatus.SENT
        message.sent_at = now
        message.provider_message_id = result.provider_id
        message.provider_response = result.response
        message.last_error = None
        sent, delivered = sent_events(last)
        _event(message, "sent", **sent)
        if delivered is not None:  # (until a DSN says otherwise)
            message.delivered_at = now
            message.delivery = message.delivery or "delivered"
            _event(message, "delivered", **delivered)
        return "sent"
    if isinstance(result, Transient) and result.unconfirmed:  # never resent automatically
        message.status = MessageStatus.FAILED
        message.last_error = (
            f"{result.reason}. It may have been delivered: check with the candidate or the "
            "provider's logs before retrying it."
        )
        _event(message, "unconfirmed", provider=label, reason=result.reason)
        return "failed"
    rate_limited = (
        isinstance(result, Transient)
        and bool(result.retry_after)
        and not result.provider_trouble
        and _rate_limits(message.id) < MAX_RATE_LIMITED
    )
    if rate_limited:  # a 429: wait as told on the same provider, without using up a retry
        message.attempts -= 1
    elif isinstance(result, Permanent) or message.attempts > max_retries:
        message.status = MessageStatus.FAILED
        message.last_error = result.reason
        _event(message, "failed", provider=label, reason=result.reason, attempts=message.attempts)
        return "failed"
    delay = result.retry_after if rate_limited else backoff_seconds(message.attempts)
    message.status = MessageStatus.QUEUED
    message.send_after = now + timedelta(seconds=delay)
    message.last_error = result.reason
    kind = "rate_limited" if rate_limited else "retry_scheduled"
    _event(message, kind, provider=label, reason=result.reason, delay_s=round(delay, 1))
    return "retry"


TAKE_AHEAD = 16  # sends taken from the rate buckets at once (at most what the batch still has)


MAX_RATE_LIMITED = 10  # 429s for one message before they count as retries (nothing loops forever)


def _rate_limits(message_id: int) -> int:
    return db.session.scalar(
        select(func.count()).where(Event.message_id == message_id, Event.type == "rate_limited")
    )


def _record(
    message_id: int, attempts: list[Attempt], token: str, max_retries: int, subject: str | None
) -> str | None:
    """Apply a message's answers only if the lease still holds; commits."""
    message = _held(message_id, token)
    if message is None:
        db.session.rollback()
        log.warning("message %s: lease lost before its result was recorded", message_id)
        return None
    message.subject = subject
    outcome = _apply(message, attempts, max_retries)
    db.session.commit()
    return outcome


def _fail_build(message_id: int, token: str, exc: Exception) -> str | None:
    """A message that cannot be built fails alone, with the reason."""
    reason = f"Could not build this email: {exc.__class__.__name__}: {exc}"[:1000]
    message = _held(message_id, token)
    if message is None:
        db.session.rollback()
        return None
    message.lease_until = message.lease_token = None
    message.status = MessageStatus.FAILED
    message.last_error = reason
    _event(message, "failed", reason=reason, attempts=message.attempts)
    db.session.commit()
    return "failed"


def _listed(rows: dict) -> set[tuple[int, str]]:
    """(org, address) of the batch's recipients on a suppression list now (any scope): one query
    per batch, so that their commands are not sent ahead with the message before."""
    emails = {m.to_email.strip().lower() for m in rows.values()}
    orgs = {m.org_id for m in rows.values()}
    if not emails:
        return set()
    found = db.session.execute(
        select(Suppression.org_id, Suppression.email).where(
            Suppression.org_id.in_(orgs), Suppression.email.in_(emails)
        )
    )
    return {(org_id, email) for org_id, email in found}


def _known_stopped(row: Message, listed: set, answers: dict[int, str]) -> bool:
    """What the batch already knows will stop this message at its begin (a suppression, or
    what _no_longer_wanted says of its invitation's answer). Only an optimisation: the begin
    decides, on the rows as they are then."""
    if (row.org_id, row.to_email.strip().lower()) in listed:
        return True
    return _no_longer_wanted(row, None, answers.get(row.invitation_id)) is not None


def _recent_sends(rows: dict) -> dict[int, list]:
    """Per candidate of this batch, when bulk mail was sent to them within the cap's window
    (one query per batch; sends made during the batch are added as they happen)."""
    candidates = {r.candidate_id for r in rows.values() if r.candidate_id and r.lane == Lane.BULK}
    if not candidates:
        return {}
    since = clock.now() - timedelta(seconds=current_app.config["CANDIDATE_WINDOW_SECONDS"])
    recent: dict[int, list] = {}
    for candidate_id, sent_at in db.session.execute(
        select(Message.candidate_id, Message.sent_at)
        .where(
            Message.candidate_id.in_(candidates),
            Message.lane == Lane.BULK,
            Message.status == MessageStatus.SENT,
            Message.sent_at > since,
        )
        .order_by(Message.sent_at)
    ):
        recent.setdefault(candidate_id, []).append(sent_at)
    return recent


def _capped_until(row: Any, org: Organization, recent: dict) -> datetime | None:
    """When a bulk mail to a candidate who already got org.candidate_daily_cap in the window
    may go (the oldest of those leaves the window); None if it may go now."""
    if row.candidate_id is None or row.lane != Lane.BULK:  # no cap holds transactional mail
        return None
    window = timedelta(seconds=current_app.config["CANDIDATE_WINDOW_SECONDS"])
    since = clock.now() - window
    sent = [t for t in recent.get(row.candidate_id, []) if t > since]
    if len(sent) < org.candidate_daily_cap:
        return None
    return sent[len(sent) - org.candidate_daily_cap] + window


def _over_candidate_cap(row: Any, org: Organization, token: str, recent: dict) -> bool:
    """A capped bulk mail (see _capped_until) waits: the row is released with that time."""
    later = _capped_until(row, org, recent)
    if later is None:
        return False
    db.session.execute(_RELEASE, {"ids": [row.id], "token": token, "send_after": later})
    db.session.add(
        Event(
            org_id=row.org_id,
            message_id=row.id,
            type="capped",
            detail={"until": later.isoformat(), "cap": org.candidate_daily_cap},
        )
    )
    db.session.commit()
    return True


def _wait_key(org_id: int, lane: str = Lane.BULK) -> str:
    """One per org and lane: a bulk wake-up a minute away never holds transactional mail."""
    if lane == Lane.TRANSACTIONAL:
        return f"herald:dispatch:org:{org_id}:transactional:waiting"
    return f"herald:dispatch:org:{org_id}:waiting"


def _dispatch_at(org_id: int, when: datetime, lane: str = Lane.BULK) -> None:
    """The org's one delayed dispatcher, for when its buckets have refilled (RQ's own scheduler).
    A Redis key set only if absent says one waits: a second batch that hits the rate meanwhile
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
                "app.jobs.send.dispatch_due",
                woken_for=org_id,
                job_timeout=1800,
                **lanes,
            )
    except RedisError:
        pass  # the sweeper dispatches due rows anyway


_NEXT_DUE = text(
    "SELECT min(send_after) FROM messages"
    " WHERE org_id = :org AND status = 'queued' AND send_after > :now"
)


def rearm(org_id: int) -> None:
    """After the org's delayed dispatcher ran: wake again for its next queued row if one comes
    due within a sweep (a batch that hit the rate while another wake-up was armed left its rows for
    later than that one; rows further out are the sweeper's)."""
    now = clock.now()
    # rows due already but not claimed wait for something else (a paused campaign, or the
    # successor of a dispatcher out of time): no wake-up for them, or it would repeat each second
    next_due = db.session.execute(_NEXT_DUE, {"org": org_id, "now": now}).scalar()
    db.session.rollback()
    horizon = timedelta(seconds=current_app.config["SWEEP_INTERVAL_SECONDS"])
    if next_due is not None and next_due - now < horizon:
        _dispatch_at(org_id, next_due)


def woken(org_id: int, lane: str = Lane.BULK) -> None:
    """The org's delayed dispatcher has started: the next batch that hits the rate may add one."""
    try:
        redis.client.delete(_wait_key(org_id, lane))
    except RedisError:
        pass


def _defer(message_id: int, token: str, seconds: float) -> None:
    """Put an unattempted message back for later (no provider could take it now)."""
    later = clock.now() + timedelta(seconds=max(1.0, seconds))
    db.session.execute(_RELEASE, {"ids": [message_id], "token": token, "send_after": later})
    db.session.commit()


class _Yield:
    """Whether a bulk batch should make way for transactional mail that came due meanwhile,
    asked of PostgreSQL at most every SEND_YIELD_CHECK_SECONDS (one indexed row)."""

    def __init__(self) -> None:
        self.checked = time.monotonic()
        self.since: datetime | None = None

    def now(self) -> bool:
        if self.since is not None:
            return True
        if time.monotonic() - self.checked < current_app.config["SEND_YIELD_CHECK_SECONDS"]:
            return False
        self.checked = time.monotonic()
        if db.session.execute(_TRANSACTIONAL_DUE, {"now": clock.now()}).first() is None:
            return False
        self.since = clock.now()
        return True


_TRANSACTIONAL_DUE = text(
    """
    SELECT 1 FROM messages
    WHERE status = 'queued' AND lane = 'transactional' AND send_after <= :now
      AND (campaign_id IS NULL OR kind IN ('cancelled', 'rescheduled') OR NOT EXISTS (
          SELECT 1 FROM campaigns c
          WHERE c.id = messages.campaign_id AND c.status IN ('paused', 'cancelled')))
    LIMIT 1
    """
)


def send_claimed(ids: Sequence[int], token: str) -> dict[str, int]:
    """Send claimed messages one by one through the org's providers (failing over when one is in
    trouble), committing each outcome as soon as it is known. An org whose rate is used up (or
    whose provider asked us to wait) is deferred alone; the batch goes on with the others."""
    with rows.batch():  # org, campaign, version, invitations: looked up once per batch
        return _send_batch(ids, token)


def _send_batch(ids: Sequence[int], token: str) -> dict[str, int]:
    counts = {"sent": 0, "retry": 0, "failed": 0, "suppressed": 0, "deferred": 0}
    failover = Failover()
    handled: set[int] = set()
    orgs: dict[int, Organization] = {}
    waiting: dict[throttle.Charge, datetime] = {}  # a bucket → when it has a token again
    session = db.session()
    # within a batch, org, campaign, job, template version and invitation rows are read once:
    # commits don't expire them and they are held (the identity map alone holds them weakly)
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    held: list[object] = []

    def hold(_session: object, instance: object) -> None:
        held.append(instance)

    sa_event.listen(session, "loaded_as_persistent", hold)
    rows: dict[int, Message] = {}
    charges: dict[int, throttle.Charge] = {}
    yielding = _Yield()
    fast: FastPath | None = None
    try:
        # the batch's messages, loaded once (held, so their columns stay loaded across commits)
        rows = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))}
        invitations = {m.invitation_id for m in rows.values() if m.invitation_id}
        answers: dict[int, str] = {}
        if invitations:  # the candidates' links; held like the rest
            found = db.session.scalars(
                select(Invitation).where(Invitation.id.in_(invitations))
            ).all()
            seed(Invitation, found)
            answers = {i.id: i.status for i in found}
        listed = _listed(rows)
        recent = _recent_sends(rows)
        charges = {i: throttle.charge_for(m.org_id, m.kind, m.lane) for i, m in rows.items()}
        left = Counter(charges.values())  # per bucket, rows not yet reached
        credit: Counter = Counter()  # sends taken from the buckets and not yet used
        following: Message | None = None
        fast = FastPath(token)
        for index, message_id in enumerate(ids):
            row = rows.get(message_id)
            if row is None:
                continue
            charge = charges[message_id]
            left[charge] -= 1
            if charge in waiting:
                continue  # released below, with the bucket's time
            announced = following is not None and following.id == message_id
            if row.lane == Lane.BULK and not announced and yielding.now():
                break  # transactional mail is due: the next claim takes it first
            org = orgs.get(row.org_id) or orgs.setdefault(
                row.org_id, db.session.get(Organization, row.org_id)
            )
            if _over_candidate_cap(row, org, token, recent):
                handled.add(message_id)  # deferred, not sent
                continue
            routes = failover.usable(row.org_id)
            if not routes:  # every provider failed in this batch or has its breaker open
                handled.add(message_id)
                _defer(message_id, token, failover.reopens_in(row.org_id) or backoff_seconds(1))
                counts["deferred"] += 1
                continue
            bucket = (charge, routes[0].key)
            if credit[bucket] <= 0:  # a few sends at a time, for this bucket's rows still ahead
                want = min(TAKE_AHEAD, left[charge] + 1)
                credit[bucket], wait = throttle.take_many(
                    charge, org.send_rate_per_minute, routes[0].key, want
                )
                if not credit[bucket]:
                    waiting[charge] = clock.now() + timedelta(seconds=wait)
                    continue
            credit[bucket] -= 1
            handled.add(message_id)
            following = None  # the next row, when it surely goes next through the same route
            if index + 1 < len(ids) and credit[bucket] > 0:
                after = rows.get(ids[index + 1])
                if (
                    after is not None
                    and after.org_id == row.org_id
                    and (after.candidate_id is None or after.candidate_id != row.candidate_id)
                    and _capped_until(after, org, recent) is None
                    and not _known_stopped(after, listed, answers)
                    and not (after.lane == Lane.BULK and yielding.now())
                ):
                    following = after
            ahead = not _known_stopped(row, listed, answers)  # else no commands go ahead
            outcome = _send_one(
                message_id, token, routes, failover, org, fast, row, following, ahead
            )
            if outcome != "sent":  # a 429 may have paused the provider: ask the bucket again
                credit[bucket] = 0
            if outcome:
                counts[outcome] += 1
            if outcome == "sent" and row.candidate_id:
                recent.setdefault(row.candidate_id, []).append(clock.now())
    finally:
        if fast is not None:
            try:
                fast.flush()  # the last accepted send's record
                counts["sent"] -= len(fast.lost)
            except Exception:  # noqa: BLE001 - its lease expires and the sweeper takes over
                log.exception("the batch's last send could not be recorded")
            fast.close()
        sa_event.remove(session, "loaded_as_persistent", hold)
        session.expire_on_commit = expire_on_commit
        db.session.rollback()
        metrics.flush()
        _release_rest(ids, handled, waiting, token, charges, yielding.since)
        wake: dict[tuple, datetime] = {}  # per org and lane, its first bucket to have a token
        for charge, when in waiting.items():
            at = (charge.org_id, charge.lane)
            wake[at] = min(when, wake.get(at, when))
        for (org_id, lane), when in wake.items():
            _dispatch_at(org_id, when, lane)
    log.info("batch done: %s", counts)
    return counts


def _release_rest(
    ids: Sequence[int],
    handled: set[int],
    waiting: dict,
    token: str,
    charges: dict,
    yielded_at: datetime | None,
) -> None:
    """Put back what this batch did not get to: a waiting bucket's rows at its time, the rest
    at once when the batch made way for transactional mail, else (after an error) shortly."""
    later: dict[Any, list[int]] = {}
    soon = yielded_at or clock.now() + timedelta(seconds=backoff_seconds(1))
    for message_id in ids:
        if message_id in handled:
            continue
        charge = charges.get(message_id)
        when = waiting.get(charge, soon) if charge is not None else soon
        later.setdefault(when, []).append(message_id)
    for when, chunk in later.items():
        db.session.execute(_RELEASE, {"ids": chunk, "token": token, "send_after": when})
    if later:
        db.session.commit()


def _renew(message_id: int, token: str) -> bool:
    """Between failover hops: still our lease? Extend it (the hops may be slow)."""
    renewed = db.session.execute(
        text(
            "UPDATE messages SET lease_until = :until WHERE id = :id AND lease_token = :token"
            " AND status = 'sending' RETURNING id"
        ),
        {
            "id": message_id,
            "token": token,
            "until": clock.now() + timedelta(seconds=_lease_seconds()),
        },
    ).scalar()
    db.session.commit()
    return renewed is not None


def _build(
    message: Message, midway: Callable[[], None] | None = None
) -> tuple[OutgoingMessage, str | None] | Exception:
    """The message's bytes and subject, or why it cannot be built."""
    try:
        return outgoing_for(message, midway)  # (the subject is written with the outcome)
    except Exception as exc:  # noqa: BLE001 - one bad message must not stall the batch
        db.session.rollback()
        return exc


def _ahead(route: Route, message_id: int, loaded: Message) -> Callable[[], None] | None:
    """MAIL to an SMTP provider now; RCPT, then DATA, as each answer arrives (the returned call,
    made midway through building and once built): the server answers while the worker builds.
    A server that pipelines gets the three at once (or had them with the last message's body)."""
    try:
        provider = route.provider
        if not hasattr(provider, "announce"):
            return None
        provider.announce(message_id, envelope_sender(loaded), loaded.to_email)
    except Exception:  # noqa: BLE001 - e.g. unreadable credentials: the send itself says so
        return None
    return lambda: provider.advance(loaded.to_email)


def _expect(route: Route, following: Message | None) -> None:
    """Tell an SMTP provider which message comes next, so that its commands can go with this
    message's body (see SMTPProvider.expect_next)."""
    if following is None:
        return
    try:
        provider = route.provider
        if hasattr(provider, "expect_next"):
            provider.expect_next(following.id, envelope_sender(following), following.to_email)
    except Exception:  # noqa: BLE001 - only an optimisation: the next send goes as usual
        return


class _Release:
    """Whether a message may become final (FastPath.began), asked once: by the provider just
    before the end of the message, or after it, when no provider got that far. An error in
    asking is kept for the caller (it is the database's, not the provider's)."""

    def __init__(self, fast: FastPath) -> None:
        self.fast = fast
        self.answer: bool | None = None
        self.error: Exception | None = None

    def ready(self) -> bool:
        """Answered already, or answerable without waiting (the answer has arrived)."""
        return self.answer is not None or self.fast.answered()

    def __call__(self) -> bool:
        if self.answer is None:
            try:
                self.answer = self.fast.began()
            except Exception as exc:  # noqa: BLE001 - re-raised by _send_one
                self.answer, self.error = False, exc
        return self.answer


def _send_one(
    message_id: int,
    token: str,
    routes: list[Route],
    failover: Failover,
    org: Organization,
    fast: FastPath,
    loaded: Message,
    following: Message | None = None,
    ahead: bool = True,
) -> str | None:
    """Begin (lease, wanted, suppression), build, send with failover, record. The begin and
    the SMTP server's answer to MAIL are on their way while the message is built; its body goes
    while the begin (and the record of the send before) is answered, and ends only then."""
    midway = _ahead(routes[0], message_id, loaded) if ahead else None
    fast.send_begin(message_id)
    built = _build(loaded, midway)  # from the rows as loaded: the common case
    if midway is not None:
        midway()  # DATA too, if RCPT is answered by now
    release = _Release(fast)
    renew = lambda: _renew(message_id, token)  # noqa: E731
    outcome = None
    # a message the batch knows will likely stop is not started before the begin is answered
    # (withdrawing a started one costs the connection)
    if not isinstance(built, Exception) and (ahead or release()):
        outgoing, subject = built
        _expect(routes[0], following)
        outcome = failover.send(replace(outgoing, release=release), routes, renew)
    began = release()  # (asked now, if no provider got that far)
    if release.error is not None:
        raise release.error
    earlier: list[Attempt] = []
    if began:
        message = loaded  # nothing stops it, the attempt is counted
    else:  # lease lost, suppressed, paused, cancelled, answered: decided exactly here
        # (whatever went to a provider was withheld before its end: nothing was delivered)
        message = _begin(message_id, token)
        if message is None:
            return None
        if message.status == MessageStatus.SUPPRESSED:
            return "suppressed"
        built = _build(message)  # from the rows as they are now
        # a provider that failed on the way keeps its attempt and is skipped this time
        tried = outcome.attempts if outcome is not None else []
        earlier = [a for a in tried if not isinstance(a.result, Withheld)]
        outcome = None
        routes = failover.usable(message.org_id) or routes
    if isinstance(built, Exception):
        return _fail_build(message_id, token, built)
    outgoing, subject = built
    if outcome is None:
        outcome = failover.send(outgoing, routes, renew)
        outcome.attempts[:0] = earlier
    if outcome.busy_wait is not None:  # the next provider was busy: not one of its retries
        held = _held(message_id, token)
        if held is not None:
            held.attempts -= 1
            for tried in outcome.attempts:
                _event(held, "failover", provider=tried.route.label, reason=tried.result.reason)
        db.session.commit()
        _defer(message_id, token, outcome.busy_wait)
        return "deferred"
    attempts = outcome.attempts
    if len(attempts) == 1 and isinstance(attempts[0].result, Accepted):
        fast.accepted(message_id, attempts[0], subject)  # recorded with the next begin
        return "sent"
    return _record(message_id, attempts, token, org.max_retries, subject)
