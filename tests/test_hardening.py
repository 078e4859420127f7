"""What a careful attacker or an unlucky worker would try: lost leases, poison messages, open
redirects, NUL bytes, huge ids, queries before the tenant is known, secrets in tracebacks."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from app import clock, sessions
from app.config import Config
from app.extensions import db
from app.jobs.sweep import sweep
from app.models import Message, Role
from app.outbox import send, transitions
from app.outbox.queue import queue_message
from tests.factories import PASSWORD


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


def test_header_injection_in_a_name_is_neutralised(ctx, factories, sink, run_worker):
    org = factories.make_org()
    queue_message(
        org_id=org.id,
        kind="test",
        template="test_email",
        to_email="a@example.com",
        to_name="Eve\r\nBcc: victim@example.com",
        context={"org": {"name": "x"}, "user": {"name": "Eve"}, "requested_at": "now"},
    )
    db.session.commit()
    run_worker()
    [mail] = sink.messages
    assert mail["to"] == ["a@example.com"] and b"\r\nBcc:" not in mail["data"]


def test_text_part_is_not_html_escaped(ctx, factories, sink, run_worker):
    org = factories.make_org("Smith & Co")
    queue_message(
        org_id=org.id,
        kind="test",
        template="test_email",
        to_email="a@example.com",
        context={"org": {"name": org.name}, "user": {"name": "O'Brien"}, "requested_at": "now"},
    )
    db.session.commit()
    run_worker()
    raw = sink.messages[0]["data"].decode()
    text = raw[raw.index("text/plain") : raw.index("text/html")]
    assert "It works, O'Brien!" in text and "Smith & Co" in text


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


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example",
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/%0A/evil.example",
    ],
)
def test_login_next_never_leaves_the_site(client, factories, post, target):
    factories.make_user(factories.make_org(), email="li@example.com")
    response = post(f"/login?next={target}", {"email": "li@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.location == "/"


def test_nul_bytes_and_huge_ids_are_4xx(client, factories, login_as, post):
    org = factories.make_org()
    login_as(factories.make_user(org), org)
    response = post("/settings", {"name": "Acme\x00", "timezone": "UTC"})
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    assert client.get("/messages/99999999999999999999999").status_code == 404
    assert post("/team/members/99999999999/role", {"role": "viewer"}).status_code == 404


def test_tenant_filter_is_on_before_anything_reads_current_org(app, factories):
    org_a, org_b = factories.make_org("A"), factories.make_org("B")
    user = factories.make_user(org_a)
    factories.make_message(org_b)
    from flask_login import login_user

    with app.test_request_context("/"):
        sessions.begin(user)
        login_user(user)
        app.preprocess_request()  # before_request hooks, as for every real request
        assert db.session.scalars(select(Message)).all() == []
    with app.test_request_context("/"):  # anonymous: tenant rows are invisible
        app.preprocess_request()
        assert db.session.scalars(select(Message)).all() == []


def test_tracebacks_are_redacted_in_log_output(app):
    from app.logs import RedactingFormatter

    logger = logging.getLogger("app.test")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("cannot deliver to jane.doe@example.com")
        except ValueError:
            logger.exception("send failed")
    finally:
        logger.removeHandler(handler)
    line = RedactingFormatter().format(records[0])
    assert "jane.doe@example.com" not in line and "<email>" in line


def test_dev_mailbox_cannot_be_switched_on_in_production(monkeypatch):
    monkeypatch.setenv("DEVMAIL_ENABLED", "true")
    with pytest.raises(RuntimeError, match="DEVMAIL_ENABLED"):
        Config(HERALD_ENV="production", SECRET_KEY="x")


def test_admin_cannot_touch_owner_invites(client, factories, login_as, post):
    org = factories.make_org()
    owner_invite = factories.make_team_invite(org, role=Role.OWNER)
    login_as(factories.make_user(org, Role.ADMIN), org)
    response = post(f"/team/invites/{owner_invite.id}/revoke", follow_redirects=True)
    assert "Only an owner" in response.get_data(as_text=True)
    db.session.expire_all()
    assert owner_invite.revoked_at is None


def test_rotate_keys_reencrypts_secrets_with_the_new_key(app, ctx, factories, monkeypatch):
    from cryptography.fernet import Fernet

    from app.crypto import decrypt, rotate

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", old)
    org = factories.make_org()
    account = factories.make_provider_account(org, secret="smtp-password")
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", f"{new},{old}")
    assert rotate()["provider secrets"] == 1
    db.session.commit()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", new)  # the old key is gone
    db.session.expire_all()
    assert decrypt(account.secret_encrypted) == "smtp-password"
    result = app.test_cli_runner().invoke(args=["herald", "rotate-keys"])
    assert result.exit_code == 0 and "1 provider secrets" in result.output


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


def test_seed_gives_a_fresh_install_a_login_a_job_and_candidates_once(app, ctx):
    from app.cli import DEMO_EMAIL
    from app.models import Candidate, Job, Membership

    runner = app.test_cli_runner()
    for _ in range(2):  # `make run` seeds at every start
        result = runner.invoke(args=["herald", "seed"])
        assert result.exit_code == 0, result.output
        assert f"Log in as {DEMO_EMAIL}" in result.output
    db.session.expire_all()
    [membership] = db.session.scalars(select(Membership)).all()
    org_id = membership.org_id
    assert [j.title for j in db.session.scalars(select(Job).where(Job.org_id == org_id))] == [
        "Backend Engineer"
    ]
    emails = db.session.scalars(select(Candidate.email).where(Candidate.org_id == org_id)).all()
    assert sorted(emails) == ["ada@example.com", "alan@example.com", "grace@example.com"]
    assert membership.org.postal_address  # its invitations carry an address, as bulk mail should


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
