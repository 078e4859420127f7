"""Mailgun webhook bodies: verify ({"signature": …, "event-data": …}), then normalise them to
Herald's event vocabulary. Mailgun's signature covers timestamp + token only, not the body, so
a reused token is refused and each event is applied once by its id. The token is recorded in
PostgreSQL in the event's own transaction: a delivery that failed to commit spent nothing, and a
Redis flush cannot let a replay through."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mailgun.security import SecurityGuard
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from app import clock
from app.extensions import db
from app.models import WebhookToken

FUTURE_SKEW = 60
MAX_TOKEN = 256


class WebhookRefused(Exception):
    """Refused with an HTTP status and a reason for the metrics."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class MailgunEvent:
    kind: str | None  # delivered, bounced, deferred, complained, unsubscribed; None = ignored
    event_id: str
    herald_id: int | None
    message_id: str | None
    at: float
    detail: dict


def parse(body: bytes) -> dict:
    """The JSON body in Mailgun's documented shape, or a 400."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRefused(400, "malformed", "The body is not JSON.") from exc
    if not (
        isinstance(data, dict)
        and isinstance(data.get("signature"), dict)
        and isinstance(data.get("event-data"), dict)
    ):
        raise WebhookRefused(400, "malformed", 'Expected {"signature": …, "event-data": …}.')
    return data


def verify(data: dict, signing_key: str, max_age: int) -> str:
    """Signature and age; the token, for claim_token(). Raises WebhookRefused."""
    sig = data["signature"]
    token, timestamp, signature = sig.get("token"), sig.get("timestamp"), sig.get("signature")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
        raise WebhookRefused(400, "malformed", "The signature token is missing or too long.")
    try:
        if float(timestamp) > time.time() + FUTURE_SKEW:
            raise WebhookRefused(401, "future", "The timestamp is in the future.")
        if float(timestamp) < time.time() - max_age:
            raise WebhookRefused(401, "stale", "The timestamp is older than 5 minutes.")
        ok = SecurityGuard.verify_webhook(
            signing_key, token, timestamp, signature, max_age_seconds=max_age
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise WebhookRefused(400, "malformed", "The signature fields are malformed.") from exc
    if not ok:
        raise WebhookRefused(401, "forged", "The signature does not match, or it is too old.")
    return token


def claim_token(org_id: int, token: str) -> bool:
    """Record the token as used, in the caller's transaction (no commit): False when it was used
    before (a delivery of it not yet committed is waited for)."""
    claimed = db.session.execute(
        insert(WebhookToken)
        .values(org_id=org_id, token=token, seen_at=clock.now())
        .on_conflict_do_nothing(index_elements=["org_id", "token"])
        .returning(WebhookToken.token)
    ).scalar()
    return claimed is not None


def purge_tokens(max_age: int) -> int:
    """Forget tokens whose signature is too old to pass verify() again; how many. No commit."""
    cutoff = clock.now() - timedelta(seconds=max_age + FUTURE_SKEW)
    return db.session.execute(delete(WebhookToken).where(WebhookToken.seen_at < cutoff)).rowcount


def _int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def normalise(data: dict) -> MailgunEvent:
    """Herald's view of one event, or a 400 when required parts are missing."""
    event = data["event-data"]
    name, event_id = event.get("event"), event.get("id")
    if not isinstance(name, str) or not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        raise WebhookRefused(400, "malformed", "The event has no name or id.")
    variables = event.get("user-variables") if isinstance(event.get("user-variables"), dict) else {}
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    mid = headers.get("message-id")
    status = event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
    severity = event.get("severity")
    kind = {
        "delivered": "delivered",
        "complained": "complained",
        "unsubscribed": "unsubscribed",
        "failed": "bounced" if severity == "permanent" else "deferred",
    }.get(name)  # opened/clicked: Mailgun tracking is off (Herald tracks); logged, not applied
    detail = {
        "provider": "mailgun",
        "event": name,
        "severity": severity if severity in ("permanent", "temporary") else None,
        "reason": str(event.get("reason") or "")[:200] or None,
        "code": _int(status.get("code")),
        "description": str(status.get("description") or status.get("message") or "")[:500] or None,
    }
    try:
        at = float(event.get("timestamp") or time.time())
    except (TypeError, ValueError):
        at = time.time()
    return MailgunEvent(
        kind=kind,
        event_id=f"mailgun:{event_id}",
        herald_id=_int(variables.get("herald-id")),
        message_id=f"<{mid.strip('<>')}>" if isinstance(mid, str) and mid else None,
        at=at,
        detail={k: v for k, v in detail.items() if v is not None},
    )
