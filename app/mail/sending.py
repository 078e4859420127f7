"""Claim due messages, send them through the provider, record each result at once."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, text

from app import clock
from app.extensions import db
from app.mail.mime import build_mime
from app.mail.render import RenderError, render_builtin
from app.models import Event, Message, MessageStatus
from app.providers import Accepted, OutgoingMessage, Permanent, Result, provider_for

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    UPDATE messages SET status = 'sending', lease_until = :lease_until, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM messages
        WHERE status = 'queued' AND send_after <= :now AND (:all_ids OR id = ANY(:ids))
        ORDER BY send_after, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)


def claim(limit: int, ids: Sequence[int] | None = None) -> list[int]:
    """queued → sending with a lease, for due rows no other worker holds. Commits."""
    now = clock.now()
    lease = now + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    params = {"now": now, "lease_until": lease, "limit": limit}
    params |= {"all_ids": ids is None, "ids": list(ids or [])}
    claimed = [row[0] for row in db.session.execute(_CLAIM, params)]
    db.session.commit()
    return sorted(claimed)


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter in [0.5, 1.5) of base * 2^(attempt-1)."""
    base = current_app.config["RETRY_BASE_SECONDS"] * 2 ** (attempt - 1)
    return base * (0.5 + random.random())


def _outgoing(message: Message) -> OutgoingMessage:
    """Render and serialize one message (deterministic from its row)."""
    rendered = render_builtin(message.template, message.context)
    mail_from = current_app.config["MAIL_FROM"]
    raw = build_mime(
        rendered,
        mail_from=mail_from,
        to_email=message.to_email,
        to_name=message.to_name,
        message_id=message.message_id,
        date=clock.now(),
        headers={"X-Herald-Message": str(message.id)},
    )
    message.subject = rendered.subject
    envelope_from = mail_from.rpartition("<")[2].rstrip(">").strip()
    return OutgoingMessage(
        message.id,
        raw,
        envelope_from,
        message.to_email,
        message.message_id,
        message.idempotency_key,
    )


def _record(message: Message, result: Result, provider_name: str) -> None:
    """Write one provider answer: sent, retry later, or failed for good."""
    now = clock.now()
    message.lease_until = None
    message.provider = provider_name
    if isinstance(result, Accepted):
        message.status = MessageStatus.SENT
        message.sent_at = now
        message.provider_message_id = result.provider_id
        message.provider_response = result.response
        message.last_error = None
        _event(message, "sent", provider=provider_name, response=result.response)
    elif isinstance(result, Permanent) or message.attempts > current_app.config["SEND_MAX_RETRIES"]:
        message.status = MessageStatus.FAILED
        message.last_error = result.reason
        _event(message, "failed", reason=result.reason, attempts=message.attempts)
    else:
        delay = max(backoff_seconds(message.attempts), result.retry_after or 0)
        message.status = MessageStatus.QUEUED
        message.send_after = now + timedelta(seconds=delay)
        message.last_error = result.reason
        _event(message, "retry_scheduled", reason=result.reason, delay_s=round(delay, 1))


def _event(message: Message, type_: str, **detail: object) -> None:
    db.session.add(Event(org_id=message.org_id, message_id=message.id, type=type_, detail=detail))


def send_claimed(ids: Sequence[int]) -> dict[str, int]:
    """Send messages this worker has claimed, committing each outcome as it arrives."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    if not ids:
        return counts
    rows = db.session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
    messages = {m.id: m for m in rows}
    outgoing = []
    for message in messages.values():
        try:
            outgoing.append(_outgoing(message))
        except RenderError as exc:
            _record(message, Permanent(message.id, str(exc)), "render")
            db.session.commit()
            counts["failed"] += 1
    provider = provider_for(current_app)
    for result in provider.send_batch(outgoing):
        message = messages[result.ref]
        _record(message, result, provider.name)
        db.session.commit()
        key = {MessageStatus.SENT: "sent", MessageStatus.FAILED: "failed"}.get(message.status)
        counts[key or "retry"] += 1
    log.info("batch done: %s", counts)
    return counts
