"""POST /webhooks/mailgun/<webhook id>: 200 fast when applied (or already applied), 401 when
forged, stale or replayed, 400 when malformed or about a message of another organization, 413
when oversized, 404 for an unknown URL. A refused request changes nothing and is counted."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.crypto import decrypt
from app.extensions import csrf, db
from app.mail.metrics import count_reject
from app.models import Event, Message, Organization
from app.provider_events import bp
from app.provider_events.apply import apply
from app.provider_events.mailgun import WebhookRefused, claim_token, normalise, parse, verify
from app.tenancy import ALL_ORGS

log = logging.getLogger(__name__)


def _refuse(status: int, reason: str, message: str) -> ResponseReturnValue:
    count_reject("mailgun_webhook", reason)
    return jsonify(error=message), status


def _message(org_id: int, herald_id: int | None, message_id: str | None) -> Message | None:
    """The org's message by our v: id, else by Message-ID; never another org's."""
    query = select(Message).where(Message.org_id == org_id).execution_options(**ALL_ORGS)
    if herald_id is not None:
        found = db.session.scalar(query.where(Message.id == herald_id).with_for_update())
        if found is not None:
            return found
    if message_id:
        return db.session.scalar(query.where(Message.message_id == message_id).with_for_update())
    return None


def _applied(org_id: int, event_id: str | None) -> bool:
    """Whether this provider event was applied to one of the org's messages already."""
    if not event_id:
        return False
    found = select(Event.id).where(Event.org_id == org_id, Event.provider_event_id == event_id)
    return db.session.scalar(found.execution_options(**ALL_ORGS).limit(1)) is not None


@bp.post("/webhooks/mailgun/<webhook_id>")
@csrf.exempt
def mailgun(webhook_id: str) -> ResponseReturnValue:
    cfg = current_app.config
    if (request.content_length or 0) > cfg["WEBHOOK_MAX_BYTES"]:
        return _refuse(413, "oversized", "The body is larger than 1 MB.")
    body = request.stream.read(cfg["WEBHOOK_MAX_BYTES"] + 1)
    if len(body) > cfg["WEBHOOK_MAX_BYTES"]:
        return _refuse(413, "oversized", "The body is larger than 1 MB.")
    org = db.session.scalar(select(Organization).where(Organization.webhook_id == webhook_id[:40]))
    key = (
        decrypt(org.mailgun_signing_key_encrypted)
        if org and org.mailgun_signing_key_encrypted
        else None
    )
    if org is None or key is None:
        return _refuse(404, "unknown_url", "No organization receives events at this address.")
    try:
        data = parse(body)
        token = verify(data, key, cfg["WEBHOOK_MAX_AGE_SECONDS"])
        event = normalise(data)
    except WebhookRefused as exc:
        db.session.rollback()
        return _refuse(exc.status, exc.reason, str(exc))
    if not claim_token(org.id, token):  # else committed with the event below, or not at all
        db.session.rollback()
        if event.kind is None or _applied(org.id, event.event_id):
            # Mailgun retrying a delivery whose answer it lost: it was applied, say so
            return jsonify(status="duplicate"), 200
        return _refuse(401, "replayed", "This signature was already used.")
    if event.kind is None:
        db.session.commit()
        log.info(
            "mailgun %s event ignored (Herald tracks opens and clicks itself)",
            data["event-data"].get("event"),
        )
        return jsonify(status="ignored"), 200
    message = _message(org.id, event.herald_id, event.message_id)
    if message is None:
        db.session.rollback()
        return _refuse(400, "unknown_message", "No message of this organization matches.")
    at = datetime.fromtimestamp(event.at, UTC)
    applied = apply(message, event.kind, event.event_id, event.detail, at)
    db.session.commit()
    return jsonify(status="applied" if applied else "duplicate"), 200
