"""A worker that lost its lease, keeps dying on a message, meets a message that cannot be built or
a row locked elsewhere: nothing is sent twice, nothing stalls, nothing is lost."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.jobs.sweep import sweep
from app.models import Message
from app.outbox import send, transitions
from app.outbox.queue import queue_message


def _messages() -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).order_by(Message.id)))


def test_a_worker_that_lost_its_lease_does_not_send_again(ctx, factories, sink, run_worker):
    org = factories.make_org()
    factories.make_message(org)
    stale = transitions.claim(10)  # worker A claims, then stalls past its lease
    db.session.commit()
    frozen = clock.FrozenClock()
    frozen.advance(ctx.config["SEND_LEASE_SECONDS"] + 1)
    clock.set_clock(frozen)
    assert sweep()["released"] == 1
    run_worker()  # worker B sends it
    assert len(sink.messages) == 1

    counts = send.send_claimed(stale)  # worker A wakes up
    assert not {"sent", "retry", "failed"} & set(counts)
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
    """Each result is committed before the next message begins: when the next begin fails (a
    lock held elsewhere, the database gone), the send before it is recorded, never resent."""
    org = factories.make_org()
    factories.launch_campaign(org, 3)
    claim = transitions.claim(10)
    db.session.commit()
    real_held_row = transitions.held_row

    def held_row(message_id, token):  # the second message's row cannot be had
        if message_id == claim.ids[1]:
            raise RuntimeError("lock not available")
        return real_held_row(message_id, token)

    monkeypatch.setattr(transitions, "held_row", held_row)
    with pytest.raises(RuntimeError, match="lock"):
        send.send_claimed(claim)
    first, second, _third = _messages()
    assert len(sink.messages) == 1
    assert (first.status, first.attempts) == ("sent", 1)
    assert [e.type for e in first.events].count("sent") == 1
    assert (second.status, second.attempts) == ("queued", 0)  # put back for shortly
    assert _third.status == "queued"


def test_the_begin_reads_the_suppression_list_for_the_row_as_it_is_after_a_wait(
    app, ctx, factories
):
    """When a message's row changes while the begin waits for its lock, the begin decides on
    the row as it is now: an address changed to a suppressed one is not begun."""
    import threading
    import time

    import psycopg

    org = factories.make_org()
    factories.launch_campaign(org, 1)
    factories.make_suppression(org, email="listed@example.com")
    claim = transitions.claim(10)
    db.session.commit()
    [message_id] = claim.ids
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    began: list[bool] = []

    def begin() -> None:  # another sender, with its own session
        with app.app_context():
            message = transitions.held_row(message_id, claim.token)
            began.append(transitions.begin(message, claim.token))
            db.session.commit()
            db.session.remove()

    with psycopg.connect(url) as changer, psycopg.connect(url, autocommit=True) as watch:
        changer.execute(
            "UPDATE messages SET to_email = 'listed@example.com' WHERE id = %s", (message_id,)
        )
        thread = threading.Thread(target=begin)
        thread.start()
        deadline = time.monotonic() + 10  # until the begin waits for the lock
        while not watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:
            assert time.monotonic() < deadline, "the begin never waited for the row"
        changer.commit()
        thread.join(10)
    assert began == [False]
    [message] = _messages()
    assert message.status == "suppressed"
