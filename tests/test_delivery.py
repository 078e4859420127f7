"""The delivery engine against real services: failover between providers, the circuit breaker,
retries into dead letters, Mailgun's 429, suppressions at claim time, headers, VERP and DKIM."""

from __future__ import annotations

import email
import re
import time
from email.header import decode_header, make_header

import dkim as dkimpy
import pytest
from sqlalchemy import select

from app.extensions import db, redis
from app.mail.delivery import breaker
from app.models import Event, Message, MessageStatus, Role
from tests.conftest import SINK_PORT, closed_port

pytestmark = pytest.mark.usefixtures("ctx")


def _smtp(port: int) -> dict:
    return {"host": "127.0.0.1", "port": port, "security": "none"}


def _events(message_id: int) -> list[Event]:
    return db.session.scalars(
        select(Event).where(Event.message_id == message_id).order_by(Event.id)
    ).all()


def _messages() -> list[Message]:
    db.session.expire_all()
    return db.session.scalars(select(Message).order_by(Message.id)).all()


def test_primary_refusing_connections_fails_over_to_the_second_provider(
    factories, sink, run_worker, client, login_as
):
    org = factories.make_org()
    primary = factories.make_provider_account(org, label="Primary", settings=_smtp(closed_port()))
    backup = factories.make_provider_account(org, label="Backup", settings=_smtp(SINK_PORT))
    factories.launch_campaign(org, 4)
    run_worker()

    assert sorted(m["to"][0] for m in sink.messages) == [f"round{n}@example.com" for n in range(4)]
    assert len(set(sink.message_ids())) == 4  # each once
    messages = _messages()
    assert {(m.status, m.provider_account_id, m.attempts) for m in messages} == {
        ("sent", backup.id, 1)
    }
    # each row keeps the subject its mail went out with (written with the outcome)
    received = {
        m["to"][0]: str(make_header(decode_header(email.message_from_bytes(m["data"])["Subject"])))
        for m in sink.messages
    }
    assert {m.subject for m in messages} == {received[m.to_email] for m in messages} != {None}
    failovers = [e for m in messages for e in _events(m.id) if e.type == "failover"]
    assert len(failovers) == 1  # the primary was not tried again in the same batch
    assert failovers[0].detail["provider"] == "Primary"
    assert "connection refused" in failovers[0].detail["reason"]
    assert breaker().state(primary.key) == "closed"  # one failure is under the threshold
    login_as(factories.make_user(org, Role.VIEWER), org)
    timeline = client.get(f"/messages/{failovers[0].message_id}").text
    assert "failover</span> away from Primary" in timeline and "sent</span> via Backup" in timeline


def test_breaker_opens_probes_once_and_closes_when_the_provider_is_back(
    app, factories, sink, second_sink, run_worker, monkeypatch
):
    monkeypatch.setitem(app.config, "BREAKER_THRESHOLD", 2)
    monkeypatch.setitem(app.config, "BREAKER_COOLDOWN_SECONDS", 1.0)
    org = factories.make_org()
    primary = factories.make_provider_account(
        org, label="Primary", settings=_smtp(second_sink.port)
    )
    factories.make_provider_account(org, label="Backup", settings=_smtp(SINK_PORT))
    b = breaker()

    for _ in range(2):  # two batches, each trying the primary first
        factories.make_message(org)
        run_worker()
    assert b.state(primary.key) == "open"
    factories.make_message(org)
    run_worker()  # open: straight to the backup, no failover event
    third = _messages()[-1]
    assert third.status == "sent" and not [e for e in _events(third.id) if e.type == "failover"]

    redis.client.delete(f"herald:breaker:{primary.key}:open")  # the cool-down has passed
    assert b.state(primary.key) == "half-open"
    second_sink.start()  # the primary is back
    factories.make_message(org)
    run_worker()
    assert b.state(primary.key) == "closed"
    assert len(second_sink.messages) == 1 and len(sink.messages) == 3
    assert all(m.status == "sent" for m in _messages())


def test_one_provider_down_backs_off_then_lands_in_dead_letters_and_retries(
    app, factories, sink, run_worker, login_as, post, client, monkeypatch
):
    monkeypatch.setitem(app.config, "RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setitem(app.config, "BREAKER_THRESHOLD", 100)  # (an open breaker would hold them)
    org = factories.make_org("Acme")
    org.max_retries = 2
    db.session.commit()
    account = factories.make_provider_account(org, label="Relay", settings=_smtp(closed_port()))
    campaign = factories.launch_campaign(org, 2)
    from app.jobs.send import dispatch_due

    for _ in range(20):  # a batch stops using a provider once it failed: one try per round
        if all(m.status == "failed" for m in _messages()):
            break
        for m in _messages():  # what is waiting for its backoff is due now
            m.send_after = m.created_at
        db.session.commit()
        dispatch_due()
    messages = _messages()
    assert {(m.status, m.attempts) for m in messages} == {("failed", 3)}
    assert "connection refused" in messages[0].last_error
    kinds = [e.type for e in _events(messages[0].id)]
    assert kinds.count("retry_scheduled") == 2 and kinds[-1] == "failed"
    assert sink.messages == []

    login_as(factories.make_user(org, Role.RECRUITER), org)
    page = client.get(f"/dead-letters?campaign={campaign.id}&provider=acct{account.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<strong>2</strong> failed emails match" in html
    assert "connection refused" in html and "retry scheduled via Relay" in html
    refused = post("/dead-letters/discard", {"ids": [messages[0].id]})  # no reason
    assert refused.status_code == 400 and 'id="dl-reason-error" role="alert">' in refused.text
    assert f'value="{messages[0].id}" id="dl-{messages[0].id}"' in refused.text
    assert "checked" in refused.text.split(f'id="dl-{messages[0].id}"')[1].split(">")[0]  # kept
    for literal in ("%", "_"):  # typed characters, not wildcards
        found = client.get("/dead-letters", query_string={"error": literal}).text
        assert "No failed emails match these filters." in found, literal

    account.settings = _smtp(SINK_PORT)  # the admin fixes the relay
    db.session.commit()
    response = post("/dead-letters/retry", {"scope": "all", "error": "refused"})
    assert response.status_code == 302
    run_worker()
    assert {m.status for m in _messages()} == {"sent"}
    assert len(sink.messages) == 2
    assert "No dead letters" in client.get("/dead-letters").get_data(as_text=True)


def test_discard_keeps_the_row_with_the_reason(factories, login_as, post, client):
    org = factories.make_org()
    message = factories.make_message(org)
    message.status, message.last_error = MessageStatus.FAILED, "550 no such user"
    db.session.commit()
    login_as(factories.make_user(org, Role.RECRUITER), org)
    response = post("/dead-letters/discard", {"ids": [message.id], "reason": "Withdrew"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "discarded"
    assert _events(message.id)[-1].detail["reason"] == "Withdrew"


def test_mailgun_429_waits_for_retry_after_then_sends_once(
    app,
    factories,
    mailgun_server,
    run_worker,
    monkeypatch,
):
    monkeypatch.setitem(app.config, "MAILGUN_BASE_URL", mailgun_server.url)
    org = factories.make_org()
    factories.make_provider_account(
        org,
        kind="mailgun",
        label="Mailgun",
        settings={"domain": mailgun_server.domain, "region": "us"},
        secret=mailgun_server.key,
    )
    mailgun_server.script(429, headers={"Retry-After": "1"})
    message = factories.make_message(org)
    run_worker()
    db.session.expire_all()
    held = db.session.get(Message, message.id)
    assert (held.status, held.attempts) == ("queued", 0)  # no retry used up
    assert [e.type for e in _events(message.id)][-1] == "rate_limited"
    first = time.monotonic()
    held.send_after = held.created_at  # due for the outbox; the provider's pause still holds
    db.session.commit()
    from app.jobs.send import dispatch_due

    while db.session.get(Message, message.id).status != "sent":
        dispatch_due()  # the paused bucket defers it until Retry-After has passed
        run_worker()
        db.session.expire_all()
        assert time.monotonic() - first < 10
    posts = [r for r in mailgun_server.requests if r.method == "POST"]
    assert len(posts) == 2  # the 429, then the one that went through
    assert posts[1].at - posts[0].at >= 1.0
    assert posts[1].fields["v:herald-id"] == str(message.id)
    assert posts[1].fields["o:tracking"] == "no"


def test_a_suppressed_recipient_is_never_sent_to(factories, sink, run_worker):
    org = factories.make_org()
    factories.launch_campaign(org, 2)
    factories.make_suppression(org, email="  ROUND1@example.com ")  # after the fan-out
    from app.suppressions.services import suppress

    suppress(org.id, "round1@example.com", "manual")
    db.session.commit()
    run_worker()
    assert [m["to"][0] for m in sink.messages] == ["round0@example.com"]
    blocked = [m for m in _messages() if m.to_email == "round1@example.com"][0]
    assert blocked.status == "suppressed" and _events(blocked.id)[-1].type == "suppressed"


def test_bulk_mail_carries_list_headers_verp_and_a_dkim_signature_that_verifies(
    factories, sink, run_worker
):
    from app.settings import services as deliver

    org = factories.make_org("Acme")
    org.sender_email, org.sender_name = "talent@acme.test", "Acme Talent"
    db.session.commit()
    admin = factories.make_user(org, Role.ADMIN)
    deliver.set_dkim_key(org, admin, "herald1", None)
    deliver.set_dkim_enabled(org, admin, True)
    db.session.commit()
    name, record = deliver.dkim_record(org)
    campaign = factories.launch_campaign(org, 1)
    run_worker()

    [mail] = sink.messages
    message = _messages()[0]
    assert re.fullmatch(rf"bounces\+{message.id}-[0-9a-f]{{12}}@acme\.test", mail["from"])  # VERP
    parsed = email.message_from_bytes(mail["data"])
    assert parsed["Message-ID"].endswith("@acme.test>")
    assert parsed["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:5000/u/")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Id"].endswith(f"<invitation.org{org.id}.acme.test>")
    assert parsed["Feedback-ID"] == f"c{campaign.id}:invitation:org{org.id}:herald"

    def dns(qname: bytes, timeout: int = 5) -> bytes:
        assert qname.decode().rstrip(".") == name
        return record.encode()

    assert dkimpy.verify(mail["data"], dnsfunc=dns)
    signature = parsed["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
    assert "list-unsubscribe:list-unsubscribe-post" in signature.lower()
    tampered = mail["data"].replace(b"Subject: ", b"Subject: Re: ", 1)
    assert not dkimpy.verify(tampered, dnsfunc=dns)


def test_send_metrics_are_counted_per_provider(factories, sink, run_worker):
    org = factories.make_org()
    factories.make_message(org)
    run_worker()
    sends = redis.client.hgetall("herald:metrics:sends")
    assert sends == {b"smtp|accepted": b"1"}


def _mailgun_org(factories, server, app, monkeypatch, label="Mailgun"):
    monkeypatch.setitem(app.config, "MAILGUN_BASE_URL", server.url)
    monkeypatch.setitem(app.config, "MAILGUN_TIMEOUT", (2.0, 0.5))
    org = factories.make_org()
    factories.make_provider_account(
        org,
        kind="mailgun",
        label=label,
        settings={"domain": server.domain, "region": "us"},
        secret=server.key,
    )
    return org


def test_a_mailgun_read_timeout_is_not_sent_again_through_the_backup(
    app, factories, mailgun_server, sink, run_worker, monkeypatch
):
    org = _mailgun_org(factories, mailgun_server, app, monkeypatch)
    factories.make_provider_account(org, label="Backup", settings=_smtp(SINK_PORT))
    mailgun_server.script("timeout", delay=2.0)  # it took the POST, the answer never came
    message = factories.make_message(org)
    run_worker()
    db.session.expire_all()
    held = db.session.get(Message, message.id)
    assert sink.messages == []  # no second copy through the backup
    assert held.status == "failed" and "may have been delivered" in held.last_error
    assert [e.type for e in _events(message.id)][-1] == "unconfirmed"


def test_one_orgs_429_does_not_hold_back_another_org_in_the_same_batch(
    app, factories, mailgun_server, sink, monkeypatch
):
    throttled = _mailgun_org(factories, mailgun_server, app, monkeypatch)
    other = factories.make_org("Other")
    mailgun_server.script(429, headers={"Retry-After": "1e12"})  # bogus: clamped to an hour
    first = factories.make_message(throttled)
    factories.make_message(throttled)
    mine = factories.make_message(other)
    from app.jobs.send import dispatch_due

    dispatch_due()
    db.session.expire_all()
    assert db.session.get(Message, mine.id).status == "sent"
    assert [m["to"][0] for m in sink.messages] == ["candidate@example.com"]
    waiting = db.session.get(Message, first.id)
    assert waiting.status == "queued" and waiting.attempts == 0
    assert 3500 < (waiting.send_after - waiting.created_at).total_seconds() <= 3700


def test_unreadable_credentials_of_the_first_provider_fail_over_to_the_second(
    factories, sink, run_worker
):
    org = factories.make_org()
    primary = factories.make_provider_account(
        org, label="Primary", settings=_smtp(SINK_PORT), secret="pw"
    )
    primary.secret_encrypted = "not-a-fernet-token"  # e.g. its key was rotated away
    db.session.commit()
    backup = factories.make_provider_account(org, label="Backup", settings=_smtp(SINK_PORT))
    factories.launch_campaign(org, 3)
    run_worker()

    assert len(sink.messages) == 3
    assert {(m.status, m.provider_account_id) for m in _messages()} == {("sent", backup.id)}


def test_a_message_withdrawn_midway_stops_failover_and_counts_against_no_provider(factories, sink):
    """The primary is down, the backup gets the body, then the message is withdrawn (its send
    was stopped meanwhile): nothing is delivered, only the primary's failure is counted, and
    the backup is not tried as if it had failed."""
    from dataclasses import replace

    from app.mail.delivery import Failover, routes_for
    from app.providers import Accepted, OutgoingMessage, Withheld

    org = factories.make_org()
    factories.make_provider_account(org, label="Primary", settings=_smtp(closed_port()))
    factories.make_provider_account(org, label="Backup", settings=_smtp(SINK_PORT))
    raw = b"From: a@herald.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n"
    msg = OutgoingMessage(1, raw, "jobs@acme.test", "b@example.com", "<m1@acme.test>", "k1")
    failover = Failover()
    routes = failover.usable(org.id)
    asked = []

    outcome = failover.send(replace(msg, release=lambda: asked.append(1) or False), routes)

    assert [type(a.result) for a in outcome.attempts][-1] is Withheld
    assert asked == [1]  # asked once, by the backup, after the primary failed
    assert outcome.busy_wait is None
    primary, backup = routes_for(org.id)
    failures = lambda key: int(redis.client.get(f"herald:breaker:{key}:fails") or 0)  # noqa: E731
    assert (failures(primary.key), failures(backup.key)) == (1, 0)
    again = Failover()
    outcome = again.send(replace(msg, release=lambda: True), again.usable(org.id)[1:])
    assert isinstance(outcome.attempts[-1].result, Accepted)
    assert sink.wait_for_count(1, 5) and len(sink.messages) == 1  # only the released one


def test_a_withdrawn_probe_leaves_the_next_send_to_probe_and_is_counted(factories, sink):
    """A half-open provider's probe whose message is withdrawn tested nothing: the breaker does
    not wait out its cool-down for it, and /metrics counts the withdrawal (a connection spent)."""
    from dataclasses import replace

    from app.mail import metrics
    from app.mail.delivery import Failover
    from app.providers import Accepted, OutgoingMessage, Withheld

    org = factories.make_org()
    factories.make_provider_account(org, label="Only", settings=_smtp(SINK_PORT))
    raw = b"From: a@herald.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n"
    msg = OutgoingMessage(1, raw, "jobs@acme.test", "b@example.com", "<m1@acme.test>", "k1")
    failover = Failover()
    (route,) = failover.usable(org.id)
    redis.client.set(f"herald:breaker:{route.key}:tripped", 1)  # back from open: half-open
    failover = Failover()
    (route,) = failover.usable(org.id)
    assert route.verdict == "probe"
    metrics.flush()  # (what earlier tests tallied in this process)
    redis.client.delete("herald:metrics:sends")

    outcome = failover.send(replace(msg, release=lambda: False), [route])

    assert isinstance(outcome.attempts[-1].result, Withheld)
    assert breaker().state(route.key) == "half-open"  # neither closed nor opened by it
    another = Failover()  # another batch or worker
    (route,) = another.usable(org.id)
    assert route.verdict == "probe"  # the next message probes now, not after the cool-down
    outcome = another.send(msg, [route])
    assert isinstance(outcome.attempts[-1].result, Accepted)
    assert breaker().state(route.key) == "closed"
    metrics.flush()
    sends = redis.client.hgetall("herald:metrics:sends")
    assert (sends[b"smtp|withheld"], sends[b"smtp|accepted"]) == (b"1", b"1")


def test_a_campaign_counts_what_was_discarded_and_links_its_failures(factories, login_as, client):
    org = factories.make_org()
    campaign = factories.launch_campaign(org, 4)
    sent, failed, discarded, held = _messages()
    sent.status, failed.status = MessageStatus.SENT, MessageStatus.FAILED
    discarded.status, held.status = MessageStatus.DISCARDED, MessageStatus.SUPPRESSED
    db.session.commit()
    login_as(factories.make_user(org, Role.VIEWER), org)
    page = client.get(f"/campaigns/{campaign.id}").text
    assert 'value="100"' in page  # every message was handled one way or another
    assert "<dt>Discarded</dt><dd>1</dd>" in page and "<dt>Suppressed</dt><dd>1</dd>" in page
    assert f'href="/dead-letters?campaign={campaign.id}">1</a>' in page


def test_a_discarded_invitation_closes_its_never_received_link(factories, login_as, post, client):
    from app.models import Invitation

    org = factories.make_org()
    factories.launch_campaign(org, 2)
    lost, kept = _messages()
    lost.status, lost.last_error = MessageStatus.FAILED, "550 no such user"
    db.session.commit()
    login_as(factories.make_user(org, Role.RECRUITER), org)
    assert (
        post("/dead-letters/discard", {"ids": [lost.id], "reason": "Bad address"}).status_code
        == 302
    )
    db.session.expire_all()
    statuses = {i.id: i.status for i in db.session.scalars(select(Invitation))}
    assert statuses[lost.invitation_id] == "revoked"  # no reminder will follow it
    assert statuses[kept.invitation_id] == "pending"  # the other candidate's is untouched
    page = client.get(f"/candidates/{lost.candidate_id}").text
    assert "reply by" not in page.split('id="candidate-invitations"')[1].split("</table>")[0]
