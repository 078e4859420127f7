"""Two lanes: transactional mail is claimed before bulk, charged to its own rates, carries no
List-Unsubscribe and is held back only by a suppression of all email."""

from __future__ import annotations

import email
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.extensions import db
from app.jobs.send import dispatch_due
from app.mail.catalogue import sample_context
from app.models import Message, Role, TemplateKind
from app.outbox import throttle
from app.outbox.queue import queue_message
from app.queues import send_queue
from app.suppressions.services import suppress

ROOT = Path(__file__).resolve().parent.parent


def _reset_of(sink, address: str) -> bool:
    return any(m["to"] == [address] and b"reset" in m["data"].lower() for m in sink.messages)


def _custom(org, to: str, lane: str | None = None) -> Message:
    """A 'custom' mail of the org's own template (bulk unless the lane says otherwise)."""
    from tests import factories

    template = factories.make_email_template(org, TemplateKind.CUSTOM)
    context = sample_context()
    context["candidate"] = dict(context["candidate"], email=to, custom={})
    context["_unsubscribe"] = {"kind": "custom", "email": to}
    message = queue_message(
        org_id=org.id, kind="custom", template="version", to_email=to, context=context, lane=lane
    )
    message.template_version_id = template.current_version_id
    return message


def test_each_message_gets_its_lane(ctx, factories, post):
    org = factories.make_org()
    factories.make_user(org, email="li@example.com")
    campaign = factories.launch_campaign(org, 2)
    post("/forgot", {"email": "li@example.com"})
    notice = queue_message(
        org_id=org.id, kind="rescheduled", template="version", to_email="a@example.com"
    )
    marked = queue_message(
        org_id=org.id, kind="custom", template="version", to_email="b@example.com", lane="bulk"
    )
    api = _custom(org, "c@example.com", lane="transactional")
    lanes = dict(db.session.execute(select(Message.kind, Message.lane)).all())
    assert lanes["invitation"] == "bulk" and lanes["password_reset"] == "transactional"
    assert (notice.lane, marked.lane, api.lane) == ("transactional", "bulk", "transactional")
    fanned_out = select(Message.lane).where(Message.campaign_id == campaign.id).distinct()
    assert db.session.scalars(fanned_out).all() == ["bulk"]
    with pytest.raises(ValueError):
        queue_message(org_id=org.id, kind="custom", template="x", to_email="d@x.io", lane="fast")


def test_a_reset_is_claimed_before_a_campaign_queued_earlier(
    ctx, factories, sink, post, monkeypatch
):
    monkeypatch.setitem(ctx.config, "SEND_CONCURRENCY", 1)  # one sender: "first" is its order
    org = factories.make_org()
    factories.make_user(org, email="li@example.com")
    factories.launch_campaign(org, 30)
    org.send_rate_per_minute = 60
    db.session.commit()
    assert post("/forgot", {"email": "li@example.com"}).status_code == 302
    send_queue().empty()  # one dispatcher, run here, takes what is due
    dispatch_due()
    assert sink.messages[0]["to"] == ["li@example.com"]  # first, though queued last
    assert 1 < len(sink.messages) <= 1 + ctx.config["SEND_BURST"]  # then the campaign's burst


def test_a_sending_bulk_batch_makes_way_for_transactional_mail(
    app, ctx, factories, sink, post, monkeypatch
):
    """A reset requested while a campaign's invitation is on the wire goes next: a sender claims
    a few rows at a time (here one sender, one row), transactional first, so its next claim
    takes the reset before the campaign's rows queued earlier."""
    monkeypatch.setitem(app.config, "SEND_CONCURRENCY", 1)
    monkeypatch.setitem(app.config, "SEND_BATCH_SIZE", 1)
    org = factories.make_org()
    factories.make_user(org, email="li@example.com")
    factories.launch_campaign(org, 30)
    send_queue().empty()
    sink.hold_rcpt()

    def dispatcher() -> None:
        with app.app_context():
            dispatch_due()

    thread = threading.Thread(target=dispatcher)
    thread.start()
    try:
        assert sink.holding.wait(10)  # the batch's first invitation is on the wire
        assert post("/forgot", {"email": "li@example.com"}).status_code == 302
    finally:
        sink.release()
        thread.join(30)
    order = [m["to"][0] for m in sink.messages]
    assert len(order) == 31 and order.index("li@example.com") == 1, order


def test_a_bulk_wake_up_a_minute_away_does_not_hold_transactional_mail(
    ctx, factories, sink, monkeypatch
):
    """An org whose bulk rate (1 a minute) and transactional bucket (burst 1) are both used up
    gets a wake-up for each lane, the transactional one (6 a minute) about ten seconds away."""
    monkeypatch.setitem(ctx.config, "SEND_BURST", 1)
    monkeypatch.setitem(ctx.config, "TRANSACTIONAL_BURST", 1)
    monkeypatch.setitem(ctx.config, "TRANSACTIONAL_RATE_PER_MINUTE", 6)
    org = factories.make_org()
    org.send_rate_per_minute = 1
    for n in range(2):
        factories.make_message(org, f"bulk{n}@example.com", lane="bulk")
        factories.make_message(org, f"notice{n}@example.com")  # transactional
    send_queue().empty()
    dispatch_due()
    assert sorted(m["to"][0] for m in sink.messages) == ["bulk0@example.com", "notice0@example.com"]
    registry = ScheduledJobRegistry(queue=send_queue())
    wake_ups = {}
    for job_id in registry.get_job_ids():
        job = send_queue().fetch_job(job_id)
        wake_ups[job.kwargs.get("lane", "bulk")] = registry.get_scheduled_time(job)
    assert set(wake_ups) == {"bulk", "transactional"}
    assert wake_ups["transactional"] < wake_ups["bulk"] - timedelta(seconds=30)


def test_a_reset_behind_a_throttled_campaign_of_1000_goes_out_within_seconds(
    app, ctx, factories, sink, post, tmp_path
):
    """Two real workers send a 1,000-recipient campaign at 60/min; a password reset requested
    meanwhile reaches the relay within a few seconds, not after the campaign."""
    org = factories.make_org()
    factories.make_user(org, email="li@example.com")
    factories.launch_campaign(org, 1000)
    org.send_rate_per_minute = 60
    db.session.commit()
    logs = (tmp_path / "workers.log").open("w")
    workers = [
        subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            stdout=logs,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        assert sink.wait_for_count(ctx.config["SEND_BURST"] + 1, timeout=60), "not sending"
        asked = time.monotonic()
        assert post("/forgot", {"email": "li@example.com"}).status_code == 302
        with sink.lock:
            arrived = sink.lock.wait_for(lambda: _reset_of(sink, "li@example.com"), 10)
        waited = time.monotonic() - asked
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        logs.close()
    assert arrived, (tmp_path / "workers.log").read_text()[-3000:]
    assert waited < 5, waited
    assert len(sink.messages) < 100  # the campaign still goes at its rate


def test_account_mail_is_charged_to_no_orgs_rate(ctx, factories):
    org = factories.make_org()
    reset = throttle.charge_for(org.id, "password_reset", "transactional")
    granted, _ = throttle.take_many(reset, 1, "p1", 10)
    assert granted == ctx.config["SEND_BURST"]  # the provider's burst: no org bucket in the way
    assert throttle.take(org.id, 1, "p2") == 0  # the org's own rate is untouched
    assert throttle.take(org.id, 1, "p2") > 0  # (1 a minute: now used up)
    assert throttle.take_many(reset, 1, "p3", 1)[0] == 1  # and holds no reset back


def test_an_orgs_transactional_mail_has_its_own_bucket(ctx, factories, monkeypatch):
    monkeypatch.setitem(ctx.config, "TRANSACTIONAL_BURST", 3)
    org = factories.make_org()
    notice = throttle.charge_for(org.id, "rescheduled", "transactional")
    assert throttle.take(org.id, 1, "p1") == 0 and throttle.take(org.id, 1, "p1") > 0
    assert throttle.take_many(notice, 1, "p2", 10)[0] == 3  # its own burst, bulk rate spent
    assert throttle.take_many(notice, 1, "p3", 1)[0] == 0  # and its own limit
    other = factories.make_org()
    assert throttle.take(other.id, 1, "p4") == 0  # another org's buckets are its own


def test_bulk_mail_leaves_a_share_of_the_provider_to_transactional(ctx, factories, monkeypatch):
    monkeypatch.setitem(ctx.config, "PROVIDER_RATE_PER_MINUTE", 60)
    org = factories.make_org()
    bulk = throttle.charge_for(org.id, "invitation", "bulk")
    notice = throttle.charge_for(org.id, "cancelled", "transactional")
    granted, _ = throttle.take_many(bulk, 100_000, "smtp", 100)
    assert granted == ctx.config["SEND_BURST"]  # its burst, as ever
    assert throttle.take_many(bulk, 100_000, "smtp", 1)[0] == 0
    assert throttle.take_many(notice, 100_000, "smtp", 5)[0] == 1  # the share kept
    rates = {key: rate * 60 for key, rate, _ in throttle.buckets(bulk, 100_000, "smtp")}
    assert rates["herald:bucket:provider:smtp:bulk"] == pytest.approx(54)  # 90% of 60/min


def test_transactional_mail_has_no_list_unsubscribe(ctx, factories, sink, run_worker):
    org = factories.make_org()
    org.postal_address = "12 Rue des Lilas, Lyon"
    _custom(org, "bulk@example.com")
    _custom(org, "api@example.com", lane="transactional")
    db.session.commit()
    run_worker()
    mails = {m["to"][0]: email.message_from_bytes(m["data"]) for m in sink.messages}
    assert mails["bulk@example.com"]["List-Unsubscribe"].startswith("<http")
    assert mails["api@example.com"]["List-Unsubscribe"] is None
    assert mails["api@example.com"]["List-Unsubscribe-Post"] is None
    assert mails["api@example.com"]["List-Id"]  # still says whose mail it is
    text = next(p for p in mails["api@example.com"].walk() if p.get_content_type() == "text/plain")
    assert "12 Rue des Lilas" in text.get_payload(decode=True).decode()  # the footer stays


def test_only_a_suppression_of_all_mail_holds_transactional_mail_back(
    ctx, factories, sink, run_worker
):
    """The same three suppressions for a transactional and a bulk mail each: one of a kind's
    scope, an unsubscribe from everything, a hard bounce."""
    org = factories.make_org()
    rules = {"scoped": ("manual", ["custom"]), "unsubscribed": ("unsubscribed", ["all"])}
    rules["bounced"] = ("hard_bounce", ["all"])
    for name, (reason, scope) in rules.items():
        for address in (f"{name}@example.com", f"{name}.bulk@example.com"):
            suppress(org.id, address, reason, scope)
        _custom(org, f"{name}@example.com", lane="transactional")
        _custom(org, f"{name}.bulk@example.com")
    db.session.commit()
    run_worker()
    sent = sorted(m["to"][0] for m in sink.messages)
    assert sent == ["scoped@example.com", "unsubscribed@example.com"]
    statuses = dict(db.session.execute(select(Message.to_email, Message.status)).all())
    assert statuses["bounced@example.com"] == "suppressed"
    assert statuses["scoped.bulk@example.com"] == "suppressed"  # a bulk one is, in its scope


def test_the_lane_shows_on_the_message_find_a_message_and_metrics(app, factories, login_as, client):
    with app.app_context():
        org = factories.make_org()
        reset = factories.make_message(org, "li@example.com")
        bulk = factories.make_message(org, "li@example.com", lane="bulk")
        reset_id, bulk_id = reset.id, bulk.id
        login_as(factories.make_user(org, Role.VIEWER), org)
    page = client.get(f"/messages/{reset_id}").get_data(as_text=True)
    assert re.search(r"<dt>Lane</dt><dd>Transactional", page)
    page = client.get(f"/messages/{bulk_id}").get_data(as_text=True)
    assert re.search(r"<dt>Lane</dt><dd>Bulk", page)
    found = client.get("/messages/search?q=li@example.com").get_data(as_text=True)
    assert "<td>Transactional</td>" in found and "<td>Bulk</td>" in found
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'herald_messages{lane="transactional",provider="none",status="queued"} 1.0' in metrics
    assert 'herald_messages{lane="bulk",provider="none",status="queued"} 1.0' in metrics
    waited = re.search(r'herald_oldest_due_seconds\{lane="transactional"\} ([0-9.e+-]+)', metrics)
    assert waited and float(waited.group(1)) >= 0
