"""What arrived at an inbound address: a DSN (hard or soft bounce), an auto-reply (ignored),
something else (refused and counted), or an unsubscribe request by mail."""

from __future__ import annotations

import email
import hashlib
import logging
from email import policy

from flufl.bounce import all_failures
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.mail.metrics import count_reject
from app.mail.verp import message_id_of, verp_key
from app.models import Message
from app.provider_events.apply import apply
from app.tenancy import ALL_ORGS

log = logging.getLogger(__name__)


def _auto_reply(msg: email.message.Message) -> bool:
    auto = str(msg.get("Auto-Submitted", "no")).lower()
    return auto.startswith("auto-replied") or bool(
        msg.get("X-Autoreply") or msg.get("X-Autorespond")
    )


def handle(local: str, raw: bytes) -> str:
    """Act on one mail for one of our addresses (the caller commits); returns what it was (for
    logs and tests)."""
    if local.lower() == "unsubscribe":  # mailto:unsubscribe@…?subject=<signed token>
        msg = email.message_from_bytes(raw, policy=policy.compat32)
        return _unsubscribe(str(msg.get("Subject", "")).strip().split()[-1:] or "")
    message_id = message_id_of(verp_key(), local)
    if message_id is None:
        count_reject("inbound", "unknown_address")
        return "unknown address"
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    if _auto_reply(msg):
        return "auto-reply"
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector choking on odd mail: not a DSN we can read
        log.warning("inbound mail for message %s could not be scanned", message_id)
        temporary, permanent = frozenset(), frozenset()
    if not temporary and not permanent:
        count_reject("inbound", "not_a_dsn")
        return "not a bounce"
    message = db.session.scalar(
        select(Message)
        .where(Message.id == message_id)
        .with_for_update()
        .execution_options(**ALL_ORGS)
    )
    if message is None:
        return "unknown message"
    severity = "permanent" if permanent else "temporary"
    detail = {"provider": "smtp", "severity": severity, "description": _status(msg)}
    event_id = "dsn:" + hashlib.sha256(raw).hexdigest()[:40]
    applied = apply(message, "bounced", event_id, detail, clock.now())
    return f"{'hard' if permanent else 'soft'} bounce" if applied else "duplicate"


def _status(msg: email.message.Message) -> str:
    """The receiving server's words from the delivery-status part, when there is one."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload() or []:
                code = block.get("Diagnostic-Code") or block.get("Status")
                if code:
                    return " ".join(str(code).split())[:300]
    return str(msg.get("Subject", ""))[:300]


def _unsubscribe(words: list[str] | str) -> str:
    from app.public.routes import unsubscribe_by_token

    token = words[0] if words else ""
    if token and unsubscribe_by_token(token[:500], "email"):
        return "unsubscribed"
    count_reject("inbound", "bad_unsubscribe")
    return "bad unsubscribe"
