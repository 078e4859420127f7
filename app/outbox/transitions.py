"""The one owner of message state: every status change of an outbox row, and its event.

queued → sending (claim, under a lease token) → attempt counted (begin) → sent | queued again
(retry, rate limited, capped, deferred) | failed | suppressed | cancelled; failed → queued (retry
from dead letters) | discarded; sending past its lease → queued or failed (expire). Every change
made while a worker holds a row checks its lease token, so a worker that lost its lease changes
nothing. Whether a message may go is sendable.py's. Nothing here commits: the sender, jobs and
routes do.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm.attributes import set_committed_value

from app import clock
from app.extensions import db
from app.models import (
    Candidate,
    Event,
    Lane,
    Message,
    MessageStatus,
    Organization,
)
from app.outbox.sendable import (
    BULK,
    CAMPAIGN_CANCELLED,
    CANDIDATE_KINDS,
    NOTICES,
    held,
    sendable,
    why_not,
)
from app.providers import Accepted, Permanent, Transient

__all__ = ["BULK", "CAMPAIGN_CANCELLED", "CANDIDATE_KINDS", "NOTICES"]

# ---- a worker's changes (lease-checked) --------------------------------------------------------


@dataclass
class Claim:
    """Rows one sender took: (message id, org id) in the order to send, under one lease token,
    and each one's (kind, lane)."""

    token: str
    rows: list[tuple[int, int]] = field(default_factory=list)
    kinds: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        return [message_id for message_id, _ in self.rows]


def _lease_until() -> datetime:
    return clock.now() + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])


def _mine(message_id: int, token: str) -> tuple:
    return (
        Message.id == message_id,
        Message.status == MessageStatus.SENDING,
        Message.lease_token == token,
    )


def due() -> tuple:
    """Queued, due now and not held: what a claim takes and what the sweeper counts."""
    return (Message.status == MessageStatus.QUEUED, Message.send_after <= clock.now(), ~held())


def claim(limit: int, ids: list[int] | None = None) -> Claim:
    """queued → sending under a new lease token, for due rows no other worker holds
    (transactional first, then oldest due first; SKIP LOCKED), returned in that order. Rows that
    are stopped are claimed too: their begin records why."""
    token = uuid.uuid4().hex
    pick = select(Message.id).where(*due())
    if ids is not None:
        pick = pick.where(Message.id.in_(ids))
    bulk_last = Message.lane == literal_column("'bulk'")  # as ix_messages_claim has it
    order = (bulk_last, Message.send_after, Message.id)
    pick = pick.order_by(*order).limit(limit)
    rows = db.session.execute(
        update(Message)
        .where(Message.id.in_(pick.with_for_update(skip_locked=True).scalar_subquery()))
        .values(
            status=MessageStatus.SENDING,
            lease_until=_lease_until(),
            lease_token=token,
            attempted_at=None,
        )
        .returning(Message.id, Message.org_id, Message.lane, Message.send_after, Message.kind)
        .execution_options(synchronize_session=False)
    ).all()
    rows.sort(key=lambda row: (row[2] == Lane.BULK, row[3], row[0]))
    kinds = {row[0]: (row[4], row[2]) for row in rows}
    return Claim(token, [(row[0], row[1]) for row in rows], kinds)


def _event(message_id: int, org_id: int, type_: str, **detail: object) -> None:
    db.session.add(Event(org_id=org_id, message_id=message_id, type=type_, detail=detail))


def held_row(message_id: int, token: str) -> Message | None:
    """The row, locked and refreshed, if this lease token still holds it."""
    return db.session.scalars(
        select(Message)
        .where(*_mine(message_id, token))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def begin(message: Message, token: str) -> bool:
    """Just before sending (the message's row held by held_row): still sendable? Count the
    attempt and renew the lease; else record why not (suppressed, cancelled; a paused campaign's
    mail goes back to the queue)."""
    counted = db.session.execute(
        update(Message)
        .where(*_mine(message.id, token), sendable())
        .values(attempts=Message.attempts + 1, lease_until=_lease_until(), attempted_at=clock.now())
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).first()
    if counted is not None:
        set_committed_value(message, "attempts", message.attempts + 1)  # as the row is now
        return True
    status, event, detail = why_not(message)
    message.status = status
    message.lease_until = message.lease_token = None
    if status == MessageStatus.SUPPRESSED:
        message.last_error = f"Not sent: the address is suppressed ({detail['reason']})."
    if event:
        _event(message.id, message.org_id, event, **detail)
    return False


def release(ids: list[int], token: str, when: datetime) -> None:
    """Put unattempted rows this token holds back in the queue, due at `when`."""
    if ids:
        db.session.execute(
            update(Message)
            .where(
                Message.id.in_(ids),
                Message.status == MessageStatus.SENDING,
                Message.lease_token == token,
            )
            .values(
                status=MessageStatus.QUEUED, lease_until=None, lease_token=None, send_after=when
            )
            .execution_options(synchronize_session=False)
        )


def over_cap(message: Message, token: str, cap: int) -> bool:
    """A bulk mail to a candidate who got `cap` bulk mails within CANDIDATE_WINDOW_SECONDS
    (counting those another sender has on the wire now) waits: released until the oldest leaves
    the window, with a 'capped' event. Atomic across senders: the candidate's row is locked
    until the begin commits, and a begun send is counted from then on."""
    if message.candidate_id is None or message.lane != Lane.BULK:  # no cap on transactional
        return False
    db.session.execute(
        select(Candidate.id).where(Candidate.id == message.candidate_id).with_for_update()
    )
    window = timedelta(seconds=current_app.config["CANDIDATE_WINDOW_SECONDS"])
    now = clock.now()
    others = select(Message.sent_at).where(
        Message.candidate_id == message.candidate_id,
        Message.lane == Lane.BULK,
        Message.id != message.id,
        or_(
            and_(Message.status == MessageStatus.SENT, Message.sent_at > now - window),
            and_(Message.status == MessageStatus.SENDING, Message.attempted_at.is_not(None)),
        ),
    )
    times = sorted(t if t is not None else now for t in db.session.scalars(others))
    if len(times) < cap:
        return False
    until = times[len(times) - cap] + window
    release([message.id], token, until)
    _event(message.id, message.org_id, "capped", until=until.isoformat(), cap=cap)
    return True


def renew(message_id: int, token: str) -> bool:
    """Between failover hops: still our lease? Extend it (the hops may be slow)."""
    return (
        db.session.execute(
            update(Message)
            .where(*_mine(message_id, token))
            .values(lease_until=_lease_until())
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        ).first()
        is not None
    )


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter in [0.5, 1.5) of base * 2^(attempt-1)."""
    base = current_app.config["RETRY_BASE_SECONDS"] * 2 ** (attempt - 1)
    return base * (0.5 + random.random())


# ---- what the provider answered ------------------------------------------------------------------

MAX_RATE_LIMITED = 10  # 429s for one message before they count as retries (nothing loops forever)


def _rate_limits(message_id: int) -> int:
    return db.session.scalar(
        select(func.count()).where(Event.message_id == message_id, Event.type == "rate_limited")
    )


def failovers(message: Message, tried: list[tuple[str, str]]) -> None:
    """A 'failover' event per provider that failed before the next one was tried."""
    for label, reason in tried:
        _event(message.id, message.org_id, "failover", provider=label, reason=reason)


def sent(
    message: Message, provider: tuple[str, int | None, str], answer: Accepted, ms: float
) -> None:
    """sending → sent; over SMTP the receiving server's 250 is also 'delivered' (until a DSN
    says otherwise)."""
    name, account_id, label = provider
    now = clock.now()
    message.status = MessageStatus.SENT
    message.lease_until = message.lease_token = None
    message.provider, message.provider_account_id = name, account_id
    message.sent_at = now
    message.provider_message_id = answer.provider_id
    message.provider_response = answer.response
    message.last_error = None
    _event(
        message.id,
        message.org_id,
        "sent",
        provider=label,
        response=answer.response,
        ms=round(ms, 1),
    )
    if name == "smtp":
        message.delivered_at = now
        message.delivery = message.delivery or "delivered"
        _event(message.id, message.org_id, "delivered", provider=label, via="smtp")


def not_sent(
    message: Message,
    provider: tuple[str, int | None, str],
    answer: Transient | Permanent,
    max_retries: int,
) -> str:
    """sending → queued again (backoff, or a 429's Retry-After without using up a retry) or
    failed (permanent, out of retries, or maybe delivered: never resent automatically)."""
    name, account_id, label = provider
    message.lease_until = message.lease_token = None
    message.provider, message.provider_account_id = name, account_id
    message.last_error = answer.reason
    if isinstance(answer, Transient) and answer.unconfirmed:
        message.status = MessageStatus.FAILED
        message.last_error = (
            f"{answer.reason}. It may have been delivered: check with the candidate or the "
            "provider's logs before retrying it."
        )
        _event(message.id, message.org_id, "unconfirmed", provider=label, reason=answer.reason)
        return "failed"
    rate_limited = (
        isinstance(answer, Transient)
        and bool(answer.retry_after)
        and not answer.provider_trouble
        and _rate_limits(message.id) < MAX_RATE_LIMITED
    )
    if rate_limited:
        message.attempts -= 1
    elif isinstance(answer, Permanent) or message.attempts > max_retries:
        message.status = MessageStatus.FAILED
        _event(
            message.id,
            message.org_id,
            "failed",
            provider=label,
            reason=answer.reason,
            attempts=message.attempts,
        )
        return "failed"
    delay = answer.retry_after if rate_limited else backoff_seconds(message.attempts)
    message.status = MessageStatus.QUEUED
    message.send_after = clock.now() + timedelta(seconds=delay)
    kind = "rate_limited" if rate_limited else "retry_scheduled"
    _event(
        message.id,
        message.org_id,
        kind,
        provider=label,
        reason=answer.reason,
        delay_s=round(delay, 1),
    )
    return "retry"


def unbuildable(message: Message, exc: Exception) -> None:
    """A message that cannot be built fails alone, with the reason."""
    reason = f"Could not build this email: {exc.__class__.__name__}: {exc}"[:1000]
    message.status = MessageStatus.FAILED
    message.lease_until = message.lease_token = None
    message.last_error = reason
    _event(message.id, message.org_id, "failed", reason=reason, attempts=message.attempts)


def busy(message: Message, token: str, seconds: float) -> None:
    """The next provider in line was busy: the attempt is given back and the row waits for it."""
    message.attempts -= 1
    message.status = MessageStatus.QUEUED
    message.lease_until = message.lease_token = None
    message.send_after = clock.now() + timedelta(seconds=max(1.0, seconds))


# ---- changes no worker holds a lease for ---------------------------------------------------------

GAVE_UP = "Gave up: the worker sending this email stopped responding on every attempt."


def expire_leases() -> int:
    """sending rows whose lease ran out (a worker died) go back to queued, keeping the time they
    were due (so they go before rows due after them), or to failed once they have used every
    attempt (a message that kills its worker must not loop forever)."""
    now = clock.now()
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
        _event(message_id, org_id, "failed", reason=GAVE_UP)
    for message_id, org_id in rows:
        _event(message_id, org_id, "lease_expired")
    return len(rows) + len(failed)


def record_events(ids: Select, type_: str, detail: dict) -> None:
    """One event per message the `ids` query selects, in one statement."""
    db.session.execute(
        insert(Event).from_select(
            ["org_id", "message_id", "type", "detail", "created_at"],
            select(
                Message.org_id,
                Message.id,
                literal(type_),
                literal(detail, JSONB),
                literal(clock.now()),
            ).where(Message.id.in_(ids)),
        )
    )


def _move(ids: Select, status: str, **values: object) -> int:
    return db.session.execute(
        update(Message)
        .where(Message.id.in_(ids))
        .values(status=status, **values)
        .execution_options(synchronize_session=False)
    ).rowcount


UNSENT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.FAILED)


def cancel(
    messages: ColumnElement[bool],
    reason: str,
    statuses: tuple[str, ...] = UNSENT,
    **detail: object,
) -> int:
    """Mail that must never go: cancelled, with a 'cancelled' event saying why (the same event
    the begin writes for a claimed row that is no longer sendable). A row in flight loses its
    lease: its sender's begin or record then changes nothing."""
    ids = select(Message.id).where(messages, Message.status.in_(statuses)).scalar_subquery()
    record_events(ids, "cancelled", {"reason": reason, **detail})
    return _move(ids, MessageStatus.CANCELLED, lease_until=None, lease_token=None)


def retry_failed(ids: Select, by: str) -> int:
    """failed → queued now, retries reset (the dead-letter view's Retry)."""
    chosen = select(Message.id).where(Message.id.in_(ids), Message.status == MessageStatus.FAILED)
    chosen = chosen.scalar_subquery()
    record_events(chosen, "retry_requested", {"by": by})
    return _move(
        chosen,
        MessageStatus.QUEUED,
        attempts=0,
        send_after=clock.now(),
        lease_until=None,
        lease_token=None,
    )


def discard(ids: Select, by: str, reason: str) -> int:
    """failed → discarded, keeping the row and the reason."""
    chosen = select(Message.id).where(Message.id.in_(ids), Message.status == MessageStatus.FAILED)
    chosen = chosen.scalar_subquery()
    record_events(chosen, "discarded", {"by": by, "reason": reason})
    return _move(chosen, MessageStatus.DISCARDED)
