"""The transactional outbox: a message is a row before anything is queued.

queue_message() adds the row in the caller's transaction. Only after that transaction commits are
the new ids handed to RQ; if Redis is down or flushed, the sweeper finds the rows later.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import Select, event, insert, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app import clock
from app.extensions import db
from app.mail.mime import new_message_id
from app.mail.render import builtin_subject
from app.models import Event, Message, MessageStatus, Organization, lane_for
from app.queues import send_queue

log = logging.getLogger(__name__)
_PENDING = "herald_outbox_ids"


def queue_message(
    *,
    org_id: int,
    kind: str,
    template: str,
    to_email: str,
    to_name: str | None = None,
    context: dict[str, Any] | None = None,
    created_by_id: int | None = None,
    idempotency_key: str | None = None,
    send_after: datetime | None = None,
    lane: str | None = None,
) -> Message:
    """Add a queued message (and its 'queued' event) to the current transaction. Its lane is
    its kind's unless `lane` says otherwise (an API send marked transactional)."""
    message = Message(
        org_id=org_id,
        kind=kind,
        lane=lane_for(kind, lane),
        template=template,
        to_email=to_email,
        to_name=to_name,
        context=context or {},
        subject=builtin_subject(template, context or {}),  # an org template's: once rendered
        created_by_id=created_by_id,
        idempotency_key=idempotency_key or f"{kind}:{uuid.uuid4().hex}",
        # org-branded mail carries the org's domain; Herald's own mail (resets, invites) ours
        message_id=new_message_id(
            db.session.get(Organization, org_id) if template == "version" else None
        ),
        status=MessageStatus.QUEUED,
        send_after=send_after or clock.now(),
    )
    db.session.add(message)
    db.session.flush()
    db.session.add(Event(org_id=org_id, message_id=message.id, type="queued"))
    db.session.info.setdefault(_PENDING, []).append(message.id)
    return message


def kick_dispatcher() -> None:
    """Ask for a dispatcher now (the sweeper would start one within its interval anyway)."""
    n = current_app.config["SEND_DISPATCHERS"]  # one per worker: they share rows (SKIP LOCKED)
    try:
        send_queue().enqueue_many(
            [Queue.prepare_data("app.jobs.send.dispatch_due", timeout=1800) for _ in range(n)]
        )
    except RedisError:
        pass


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    """Hand newly committed message ids to the send queue (ids only)."""
    ids = session.info.pop(_PENDING, None)
    if not ids or not has_app_context():
        return
    try:
        send_queue().enqueue("app.jobs.send.send_messages", ids, job_timeout=600)
    except RedisError:
        log.warning("could not queue %d message(s); the sweeper will send them", len(ids))


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    """Rows that were rolled back must not be queued."""
    session.info.pop(_PENDING, None)


def record_events(ids: Select, type_: str, detail: dict) -> None:
    """One event per message the `ids` query selects, in one statement (no commit)."""
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
