"""A worker that lost its lease, keeps dying on a message, meets a message that cannot be built or
a row locked elsewhere: nothing is sent twice, nothing stalls, nothing is lost."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.jobs.sweep import sweep
from app.mail import sending
from app.mail.outbox import queue_message
from app.models import Message


def _messages() -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).order_by(Message.id)))


def test_a_worker_that_lost_its_lease_does_not_send_again(ctx, factories, sink, run_worker):
    org = factories.make_org()
    factories.make_message(org)
    ids, stale_token = sending.claim(10)  # worker A claims, then stalls past its lease
    frozen = clock.FrozenClock()
    frozen.advance(ctx.config["SEND_LEASE_SECONDS"] + 1)
    clock.set_clock(frozen)
    assert sweep()["released"] == 1
    run_worker()  # worker B sends it
    assert len(sink.messages) == 1

    counts = sending.send_claimed(ids, stale_token)  # worker A wakes up
    assert (counts["sent"], counts["retry"], counts["failed"]) == (0, 0, 0)
    assert len(sink.messages) == 1
    [message] = _messages()
    assert message.status == "sent" and [e.type for e in message.events].count("sent") == 1


def test_one_broken_message_does_not_stall_its_batch(ctx, factories, sink, run_worker):
    org = factories.make_org()
    good = [factories.make_message(org, to_email=f"ok{n}@example.com") for n in range(2)]
    queue_message(
        org_id=org.id,
        kind="test",
        template="test_email",
        to_email="bad@example.com",
        context={"org": {"name": "x"}},
    )  # 'user' missing: cannot render
    db.session.commit()
    run_worker()
    by_to = {m.to_email: m for m in _messages()}
    assert {by_to[m.to_email].status for m in good} == {"sent"}
    broken = by_to["bad@example.com"]
    assert broken.status == "failed" and "Unknown variable 'user'" in broken.last_error
    assert len(sink.messages) == 2


def test_expired_leases_of_a_poison_message_end_in_failed(ctx, factories):
    """Past the org's own retries (here 1) a message whose worker keeps dying is given up."""
    org = factories.make_org()
    org.max_retries = 1
    poison, unlucky = factories.make_message(org), factories.make_message(org)
    for message, attempts in ((poison, 2), (unlucky, 1)):
        message.status, message.attempts = "sending", attempts
        message.lease_until = clock.now()
    db.session.commit()
    frozen = clock.FrozenClock()
    frozen.advance(1)
    clock.set_clock(frozen)
    sweep()
    status = {m.id: (m.status, m.last_error or "") for m in _messages()}
    assert status[poison.id][0] == "failed" and "stopped responding" in status[poison.id][1]
    assert status[unlucky.id][0] in ("queued", "sending", "sent")  # tried again


def test_a_send_is_recorded_even_when_the_next_message_cannot_begin(
    ctx, factories, sink, monkeypatch
):
    """The record of an accepted send travels with the next message's begin: when that
    statement fails (here a lock held elsewhere), the send is still recorded, never resent."""
    import psycopg

    from app.mail import fastpath

    org = factories.make_org()
    factories.launch_campaign(org, 3)
    ids, token = sending.claim(10)
    url = db.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    holder = psycopg.connect(url)
    real_send_begin = fastpath.FastPath.send_begin
    begun: list[int] = []

    def send_begin(self, message_id):  # the second message's row is locked by someone else
        begun.append(message_id)
        if len(begun) == 2:
            self.durable.execute("SET lock_timeout = '200ms'")
            holder.execute("SELECT 1 FROM messages WHERE id = %s FOR UPDATE", (message_id,))
        return real_send_begin(self, message_id)

    monkeypatch.setattr(fastpath.FastPath, "send_begin", send_begin)
    try:
        with pytest.raises(psycopg.errors.LockNotAvailable):
            sending.send_claimed(ids, token)
    finally:
        holder.close()
    first, second, _third = _messages()
    assert len(sink.messages) == 1
    assert (first.status, first.attempts) == ("sent", 1)
    assert [e.type for e in first.events].count("sent") == 1
    assert (second.status, second.attempts) == ("sending", 0)  # the sweeper takes it later


def test_the_begin_reads_the_suppression_list_for_the_row_as_it_is_after_a_wait(ctx, factories):
    """When a message's row changes while the begin waits for its lock, the begin decides on
    the row as it is now: an address changed to a suppressed one is not begun."""
    import threading
    import time
    from datetime import timedelta

    import psycopg

    from app.mail import fastpath

    org = factories.make_org()
    factories.launch_campaign(org, 1)
    factories.make_suppression(org, email="listed@example.com")
    [message_id], token = sending.claim(10)
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    begin = f"WITH {fastpath._BEGIN} SELECT EXISTS (SELECT 1 FROM began)"
    params = {"id": message_id, "token": token, "until": clock.now() + timedelta(seconds=60)}
    began: list[bool] = []
    with psycopg.connect(url) as changer, psycopg.connect(url, autocommit=True) as worker:
        changer.execute(
            "UPDATE messages SET to_email = 'listed@example.com' WHERE id = %s", (message_id,)
        )
        thread = threading.Thread(
            target=lambda: began.append(worker.execute(begin, params).fetchone()[0])
        )
        thread.start()
        with psycopg.connect(url, autocommit=True) as watch:  # until the begin waits for the lock
            deadline = time.monotonic() + 10
            while not watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[
                0
            ]:
                assert time.monotonic() < deadline, "the begin never waited for the row"
        changer.commit()
        thread.join(10)
    assert began == [False]
