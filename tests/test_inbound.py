"""The inbound SMTP server: DSNs at the signed VERP address bounce and suppress, soft bounces
count up to the org's threshold, auto-replies and other mail are not bounces, forged VERP
addresses and other domains are refused, and unsubscribing by mail works."""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db, redis
from app.mail.verp import local_part, verp_key
from app.models import Event, Message, Organization, Suppression
from tests.conftest import _free_port

pytestmark = pytest.mark.usefixtures("ctx")


@pytest.fixture
def inbound(app, monkeypatch):
    monkeypatch.setitem(app.config, "BOUNCE_DOMAIN", "bounce.herald.test")
    from app.provider_events.inbound_server import start

    port = _free_port()
    controller = start(app, "127.0.0.1", port)
    yield port
    controller.stop()


@pytest.fixture
def sent_message(factories):
    org = factories.make_org()
    message = factories.make_message(org, to_email="gone@example.com")
    message.status, message.sent_at = "sent", clock.now()
    db.session.commit()
    return message


def dsn(action: str = "failed", status: str = "5.1.1", diag: str = "550 5.1.1 No such user") -> str:
    return f"""From: MAILER-DAEMON@mx.example.com
To: someone
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

Your message could not be delivered.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; gone@example.com
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diag}

--BOUND--
"""


def deliver(port: int, rcpt: str, body: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("MAILER-DAEMON@mx.example.com", [rcpt], body.encode())


def _verp(message: Message) -> str:
    return f"{local_part(verp_key(), message.id)}@bounce.herald.test"


def test_a_hard_bounce_marks_the_message_and_suppresses_the_address(inbound, sent_message):
    deliver(inbound, _verp(sent_message), dsn())
    db.session.expire_all()
    message = db.session.get(Message, sent_message.id)
    assert message.bounce_type == "hard"
    [row] = db.session.scalars(select(Suppression)).all()
    assert (row.email, row.reason) == ("gone@example.com", "hard_bounce")
    event = db.session.scalars(select(Event).where(Event.type == "bounced")).one()
    assert "No such user" in event.detail["description"]
    deliver(inbound, _verp(sent_message), dsn())  # the same DSN again: applied once
    assert db.session.scalars(select(Event).where(Event.type == "bounced")).all() == [event]


def test_soft_bounces_suppress_after_the_threshold(inbound, factories, sent_message):
    org = db.session.get(Organization, sent_message.org_id)
    messages = [sent_message] + [
        factories.make_message(org, to_email="gone@example.com") for _ in range(2)
    ]
    for n, message in enumerate(messages):
        deliver(inbound, _verp(message), dsn("delayed", "4.2.2", f"452 4.2.2 Mailbox full {n}"))
        db.session.expire_all()
        suppressed = db.session.scalars(select(Suppression)).all()
        assert bool(suppressed) == (n == 2), n
    assert suppressed[0].reason == "soft_bounce"


def test_auto_replies_other_mail_and_forged_addresses_change_nothing(inbound, sent_message):
    reply = "From: x@example.com\nAuto-Submitted: auto-replied\nSubject: Out of office\n\nAway."
    deliver(inbound, _verp(sent_message), reply)
    deliver(inbound, _verp(sent_message), "From: x@example.com\nSubject: hi\n\nJust a note.")
    deliver(inbound, f"bounces+{sent_message.id}-000000000000@bounce.herald.test", dsn())
    db.session.expire_all()
    assert db.session.get(Message, sent_message.id).bounced_at is None
    assert db.session.scalars(select(Suppression)).all() == []
    counted = redis.client.hgetall("herald:metrics:rejects")
    assert counted[b"inbound|not_a_dsn"] == b"1" and counted[b"inbound|unknown_address"] == b"1"
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(inbound, "someone@elsewhere.example", "Subject: relay?\n\nx")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(inbound, "postmaster@bounce.herald.test", "Subject: x\n\nx")


def test_unsubscribe_by_mail(inbound, app, factories, sink, run_worker):
    org = factories.make_org()
    factories.launch_campaign(org, 1)
    run_worker()
    import email as email_lib

    header = email_lib.message_from_bytes(sink.messages[0]["data"])["List-Unsubscribe"]
    mailto = header.split("<mailto:")[1].rstrip(">").strip()
    address, _, query = mailto.partition("?subject=")
    assert address == "unsubscribe@bounce.herald.test"
    deliver(inbound, address, f"From: round0@example.com\nSubject: {query}\n\nunsubscribe")
    db.session.expire_all()
    row = db.session.scalars(select(Suppression)).one()
    assert (row.email, row.source) == ("round0@example.com", "email")
