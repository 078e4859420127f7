"""Several senders at once (SEND_CONCURRENCY threads in a worker, each with its own session and
connection): every message is sent once, and the per-candidate cap holds across them."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from app.extensions import db
from app.models import Event, Message
from app.outbox import send, transitions
from app.outbox.queue import queue_message


def _messages() -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).order_by(Message.id)))


def test_concurrent_senders_send_each_message_once(app, ctx, factories, sink, monkeypatch):
    monkeypatch.setitem(ctx.config, "SEND_CONCURRENCY", 8)
    monkeypatch.setitem(ctx.config, "SEND_BATCH_SIZE", 16)  # two rows per claim: many claims
    monkeypatch.setitem(ctx.config, "SEND_BURST", 1000)  # the rate out of the way
    monkeypatch.setitem(ctx.config, "PROVIDER_RATE_PER_MINUTE", 100_000)
    monkeypatch.setitem(ctx.config, "TRANSACTIONAL_BURST", 1000)  # (these are transactional)
    monkeypatch.setitem(ctx.config, "TRANSACTIONAL_RATE_PER_MINUTE", 100_000)
    org = factories.make_org()
    org.send_rate_per_minute = 100_000
    for n in range(60):
        factories.make_message(org, f"n{n}@example.com")
    totals, more = send.dispatch(60.0)
    assert totals.get("sent") == 60 and not more
    assert sink.wait_for_count(60, 10)
    ids = sink.message_ids()
    assert len(ids) == 60 and len(set(ids)) == 60  # each once
    messages = _messages()
    assert {m.status for m in messages} == {"sent"} and {m.attempts for m in messages} == {1}
    sent = Counter(db.session.scalars(select(Event.message_id).where(Event.type == "sent")).all())
    assert set(sent.values()) == {1}


def test_the_candidate_cap_holds_across_concurrent_senders(app, ctx, factories, sink):
    """Eight bulk mails to one candidate whose cap is 3, each claimed by a different sender
    and sent at the same time: 3 go, the others wait (capped), whatever the interleaving."""
    org = factories.make_org()
    assert org.candidate_daily_cap == 3
    person = factories.make_candidate(org, email="cap@example.com")
    for n in range(8):
        message = queue_message(
            org_id=org.id,
            kind="custom",
            template="test_email",
            to_email=person.email,
            context={"org": {"name": org.name}, "user": {"name": "C"}, "requested_at": str(n)},
        )
        message.candidate_id = person.id
    db.session.commit()
    claims = [transitions.claim(1) for _ in range(8)]
    db.session.commit()
    assert sorted(len(c.ids) for c in claims) == [1] * 8
    go = threading.Barrier(8)

    def sender(claim: transitions.Claim) -> None:
        with app.app_context():
            go.wait(10)
            send.send_claimed(claim)
            db.session.remove()

    threads = [threading.Thread(target=sender, args=(c,)) for c in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = Counter(m.status for m in _messages())
    assert statuses == {"sent": 3, "queued": 5}
    assert sink.wait_for_count(3, 5) and len(sink.messages) == 3
    capped = db.session.scalars(select(Event).where(Event.type == "capped")).all()
    assert len(capped) == 5
