"""Mailgun webhooks signed the way Mailgun signs them: applied once; forged, stale, replayed,
malformed, oversized, foreign or unknown requests refused with their 4xx and nothing changed."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import pytest
from sqlalchemy import select

from app import clock
from app.crypto import encrypt
from app.extensions import db, redis
from app.models import Campaign, Event, Message, Suppression

pytestmark = pytest.mark.usefixtures("ctx")
KEY = "key-signing-0123456789abcdef"


@pytest.fixture
def org_message(factories):
    org = factories.make_org("Acme")
    org.mailgun_signing_key_encrypted = encrypt(KEY)
    db.session.commit()
    factories.launch_campaign(org, 1)
    message = db.session.scalars(select(Message)).one()
    message.status, message.sent_at = "sent", clock.now()
    db.session.commit()
    return org, message


def signed(event: dict, key: str = KEY, timestamp: int | None = None, token: str | None = None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    token = token or secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": str(timestamp), "token": token, "signature": signature},
        "event-data": event,
    }


def event(kind: str, message: Message, **extra) -> dict:
    return {
        "event": kind,
        "id": secrets.token_hex(8),
        "timestamp": time.time(),
        "recipient": message.to_email,
        "user-variables": {"herald-id": str(message.id)},
        "message": {"headers": {"message-id": message.message_id.strip("<>")}},
        **extra,
    }


def post(app, org, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = app.test_client().post(
        f"/webhooks/mailgun/{org.webhook_id}", data=data, content_type="application/json"
    )
    return response.status_code, response.get_json(silent=True) or {}


def _events(kind: str) -> list[Event]:
    db.session.expire_all()
    return db.session.scalars(select(Event).where(Event.type == kind)).all()


def test_delivered_is_applied_once(app, org_message):
    org, message = org_message
    delivered = event("delivered", message)
    assert post(app, org, signed(delivered)) == (200, {"status": "applied"})
    assert post(app, org, signed(delivered)) == (200, {"status": "duplicate"})  # redelivery
    assert len(_events("delivered")) == 1
    db.session.expire_all()
    assert db.session.get(Message, message.id).delivery == "delivered"


def test_correlated_by_message_id_when_the_variable_is_missing(app, org_message):
    org, message = org_message
    delivered = event("delivered", message)
    delivered.pop("user-variables")
    assert post(app, org, signed(delivered))[0] == 200
    assert len(_events("delivered")) == 1


def test_permanent_failure_bounces_and_suppresses(app, org_message):
    org, message = org_message
    failed = event(
        "failed",
        message,
        severity="permanent",
        reason="bounce",
        **{"delivery-status": {"code": 550, "description": "5.1.1 No such user"}},
    )
    assert post(app, org, signed(failed))[0] == 200
    db.session.expire_all()
    bounced = db.session.get(Message, message.id)
    assert bounced.bounce_type == "hard" and bounced.bounced_at is not None
    row = db.session.scalars(select(Suppression)).one()
    assert (row.email, row.reason) == (message.to_email, "hard_bounce")
    temporary = event("failed", message, severity="temporary")
    assert post(app, org, signed(temporary))[0] == 200
    assert len(_events("deferred")) == 1  # noted, not a bounce


def test_complaint_suppresses_and_pauses_an_unhealthy_campaign(app, org_message, monkeypatch):
    org, message = org_message
    monkeypatch.setitem(app.config, "HEALTH_MIN_SAMPLE", 1)
    campaign = db.session.get(Campaign, message.campaign_id)
    campaign.status = "sending"
    db.session.commit()
    assert post(app, org, signed(event("complained", message)))[0] == 200
    db.session.expire_all()
    assert db.session.scalars(select(Suppression)).one().reason == "complaint"
    campaign = db.session.get(Campaign, message.campaign_id)
    assert campaign.status == "paused" and "Complaint rate" in campaign.paused_reason


def test_opens_and_clicks_from_mailgun_are_ignored(app, org_message):
    org, message = org_message
    assert post(app, org, signed(event("opened", message))) == (200, {"status": "ignored"})
    assert _events("opened") == []


def test_bad_requests_are_refused_and_change_nothing(app, org_message, factories):
    org, message = org_message
    good = event("delivered", message)
    now = int(time.time())
    replay = signed(event("delivered", message))
    assert post(app, org, replay)[0] == 200
    other = factories.make_org("Other")
    foreign = factories.make_message(other)
    cases = {
        "forged": (signed(good, key="not-the-key"), 401),
        "stale": (signed(good, timestamp=now - 301), 401),
        "future": (signed(good, timestamp=now + 120), 401),
        "replayed": ({**replay, "event-data": event("complained", message)}, 401),
        "not json": (b"{not json", 400),
        "wrong shape": ({"signature": "x", "event-data": []}, 400),
        "no token": ({"signature": {"timestamp": str(now)}, "event-data": good}, 400),
        "no event id": (signed({**good, "id": None}), 400),
        "foreign message": (signed(event("delivered", foreign)), 400),
        "oversized": (b"x" * (1024 * 1024 + 10), 413),
    }
    for name, (body, status) in cases.items():
        assert post(app, org, body)[0] == status, name
    assert app.test_client().post("/webhooks/mailgun/nope", json=good).status_code == 404
    assert len(_events("delivered")) == 1 and _events("complained") == []
    assert db.session.scalars(select(Suppression)).all() == []
    counted = redis.client.hgetall("herald:metrics:rejects")
    assert int(counted[b"mailgun_webhook|forged"]) == 1
    assert int(counted[b"mailgun_webhook|replayed"]) == 1
    assert int(counted[b"mailgun_webhook|oversized"]) == 1


def test_a_delivery_whose_commit_failed_is_accepted_when_mailgun_retries(
    app, org_message, monkeypatch
):
    """The token is spent only with the event's commit: Mailgun's retry is applied, not 401."""
    import app.provider_events.routes as routes

    org, message = org_message
    real_apply, calls = routes.apply, []

    def apply_then_fail(*args, **kwargs):
        calls.append(1)
        real_apply(*args, **kwargs)
        if len(calls) == 1:
            raise RuntimeError("the database went away before the commit")
        return True

    monkeypatch.setattr(routes, "apply", apply_then_fail)
    body = signed(event("delivered", message))
    with pytest.raises(RuntimeError):
        post(app, org, body)
    assert _events("delivered") == []
    assert post(app, org, body) == (200, {"status": "applied"})  # Mailgun's retry, same token
    assert len(_events("delivered")) == 1
    replay = {**body, "event-data": event("complained", message)}
    assert post(app, org, replay)[0] == 401  # a true replay after success
    assert _events("complained") == []


def test_a_redis_flush_does_not_let_a_replay_through(app, org_message):
    org, message = org_message
    body = signed(event("delivered", message))
    assert post(app, org, body)[0] == 200
    redis.client.flushdb()
    assert post(app, org, {**body, "event-data": event("complained", message)})[0] == 401
    assert _events("complained") == [] and db.session.scalars(select(Suppression)).all() == []


def test_mailgun_retrying_an_applied_delivery_gets_200_and_nothing_changes(app, org_message):
    """Mailgun lost the answer to a delivery that was applied, and sends it again (same token,
    same event): 200, applied once; the token with another event is still a replay."""
    org, message = org_message
    body = signed(event("delivered", message))
    assert post(app, org, body)[0] == 200
    status, answer = post(app, org, body)
    assert status == 200 and answer["status"] == "duplicate"
    assert len(_events("delivered")) == 1
    assert post(app, org, {**body, "event-data": event("complained", message)})[0] == 401


def test_tokens_are_forgotten_once_their_signatures_are_too_old(app, org_message):
    from app.jobs.retention import purge_events
    from app.models import WebhookToken

    org, message = org_message
    frozen = clock.FrozenClock()
    clock.set_clock(frozen)
    old = signed(event("delivered", message))
    assert post(app, org, old)[0] == 200
    frozen.advance(app.config["WEBHOOK_MAX_AGE_SECONDS"] + 61)
    fresh = signed(event("delivered", message))
    assert post(app, org, fresh)[0] == 200
    purge_events()
    db.session.expire_all()
    kept = db.session.scalars(select(WebhookToken.token)).all()
    assert kept == [fresh["signature"]["token"]]
