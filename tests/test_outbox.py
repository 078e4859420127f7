"""One real send, end to end: outbox row → RQ job → sandboxed render → SMTP → sent + events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db, redis
from app.jobs.schedule import HeraldScheduler
from app.models import Message, Role
from app.queues import SEND, queue

ROOT = Path(__file__).resolve().parent.parent


def only_message() -> Message:
    db.session.expire_all()
    return db.session.scalars(select(Message)).one()


@pytest.fixture
def recruiter(factories, login_as):
    org = factories.make_org("Acme")
    user = factories.make_user(org, Role.RECRUITER, email="rita@example.com", name="Rita")
    login_as(user, org)
    return user


def test_test_email_travels_the_whole_pipeline(ctx, recruiter, post, sink, run_worker):
    response = post("/test-email")
    assert response.status_code == 302
    message = only_message()
    assert message.status == "queued" and message.idempotency_key and message.message_id
    assert message.subject == "Herald test email for Acme"  # shown as it will be, while queued
    assert queue(SEND).count == 1  # a dispatcher woken after commit (the row is the truth)
    assert queue(SEND).jobs[0].func_name == "app.jobs.send.dispatch_due"

    run_worker()

    message = only_message()
    assert message.status == "sent"
    assert message.provider == "smtp" and message.provider_response.startswith("250")
    assert [e.type for e in message.events] == ["queued", "sent", "delivered"]
    assert len(sink.messages) == 1
    assert sink.messages[0]["to"] == ["rita@example.com"]
    raw = sink.messages[0]["data"]
    assert b"\r\n" in raw and b"Subject: Herald test email for Acme" in raw
    assert sink.message_ids() == [message.message_id]
    assert b"It works, Rita!" in raw


def test_template_values_are_escaped_in_html(ctx, factories, sink, run_worker):
    org = factories.make_org('<script>alert("x")</script>')
    from app.outbox.queue import queue_message

    queue_message(
        org_id=org.id,
        kind="test",
        template="test_email",
        to_email="a@example.com",
        context={"org": {"name": org.name}, "user": {"name": "<b>Eve</b>"}, "requested_at": "now"},
    )
    db.session.commit()
    run_worker()
    raw = sink.messages[0]["data"].decode()
    html = raw[raw.index("text/html") :]
    assert "<script>" not in html and "&lt;b&gt;Eve&lt;/b&gt;" in html.replace("=\r\n", "")


def test_redis_flushed_before_the_worker_still_sends_once(ctx, recruiter, post, sink, run_worker):
    post("/test-email")
    assert queue(SEND).count == 1
    redis.client.flushdb()  # the test's own Redis DB: the queued job is gone
    assert queue(SEND).count == 0

    run_worker()
    assert sink.messages == [] and only_message().status == "queued"

    # rq-scheduler (re-synced from declared data after the flush) runs the sweeper
    scheduler = HeraldScheduler(ctx, connection=redis.client, interval=1)
    scheduler.run(burst=True)
    run_worker()

    assert only_message().status == "sent"
    assert len(sink.messages) == 1
    run_worker()  # nothing left to send twice
    assert len(sink.messages) == 1


def test_worker_killed_holding_the_lease_is_recovered_after_expiry(
    ctx, recruiter, post, sink, run_worker
):
    post("/test-email")
    message_id = only_message().id
    sink.hold_rcpt()
    env = {**os.environ, "SEND_LEASE_SECONDS": "5"}
    worker = subprocess.Popen(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so its scheduler child is killed with it
    )
    try:
        assert sink.holding.wait(30), "worker never reached the SMTP server"
        assert only_message().status == "sending"
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its scheduler child
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    sink.release()
    assert sink.messages == []

    from app.jobs.sweep import sweep

    assert sweep()["released"] == 0  # the lease still holds: nobody else may send it
    run_worker()
    assert only_message().status == "sending" and sink.messages == []

    lease_until = only_message().lease_until
    frozen = clock.FrozenClock(lease_until)
    frozen.advance(1)
    clock.set_clock(frozen)
    assert sweep()["released"] == 1
    run_worker()

    message = only_message()
    assert message.id == message_id and message.status == "sent" and message.attempts == 2
    assert len(sink.messages) == 1
    assert [e.type for e in message.events] == ["queued", "lease_expired", "sent", "delivered"]


def test_smtp_down_retries_with_backoff_then_fails_readably(ctx, recruiter, post, run_worker):
    with socket_closed_port() as port:
        ctx.config["SMTP_PORT"] = port
        try:
            post("/test-email")
            frozen = clock.FrozenClock()
            clock.set_clock(frozen)
            delays = []
            run_worker()
            for attempt in range(1, 4):
                message = only_message()
                assert message.status == "queued" and message.attempts == attempt
                delay = (message.send_after - frozen()).total_seconds()
                base = ctx.config["RETRY_BASE_SECONDS"] * 2 ** (attempt - 1)
                assert 0.5 * base <= delay <= 1.5 * base
                delays.append(delay)
                frozen.advance(delay - 1)
                from app.jobs.sweep import sweep

                assert sweep()["due"] == 0  # not before its time
                frozen.advance(2)
                assert sweep()["due"] == 1
                run_worker()
        finally:
            ctx.config["SMTP_PORT"] = int(os.environ["SMTP_PORT"])
    message = only_message()
    assert message.status == "failed" and message.attempts == 4
    assert f"127.0.0.1:{port}" in message.last_error and "connection refused" in message.last_error
    types = [e.type for e in message.events]
    assert types == ["queued"] + ["retry_scheduled"] * 3 + ["failed"]
    assert delays[0] < delays[2]  # grows (the ranges of attempt 1 and 3 cannot overlap)


class socket_closed_port:  # noqa: N801 - used as a context manager
    """A TCP port on 127.0.0.1 with nothing listening."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]  # bound, never listening: connections are refused

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_permanent_refusal_fails_at_once(ctx, factories, sink, run_worker):
    factories.make_message(factories.make_org())
    sink.refuse_rcpt = "550 5.1.1 No such user here"
    run_worker()
    assert sink.messages == []
    message = only_message()
    assert message.status == "failed" and message.attempts == 1
    assert "550 5.1.1 No such user here" in message.last_error


def test_viewer_cannot_send(ctx, factories, login_as, post):
    org = factories.make_org()
    login_as(factories.make_user(org, Role.VIEWER), org)
    assert post("/test-email").status_code == 403
    assert db.session.scalars(select(Message)).all() == []


def test_mime_bytes_parse_back_to_what_was_built():
    """The hand-written MIME (app/mail/mime.py) read back by the email package: every header,
    part and byte of content as given, CRLF everywhere, no line over 998, no header injection."""
    from datetime import UTC, datetime
    from email import message_from_bytes, policy

    from app.mail.mime import build_mime
    from app.mail.render import Rendered

    text = "Bonjour Zoë,\n.\nFrom here on   \n" + "long line " * 20 + "\nTabs\tand = signs\n"
    html = "<html><body><p>Bonjour Zoë — <a href='https://x.example/?a=1&b=2'>r</a></p>"
    html += "<p>" + "x" * 300 + "</p></body></html>"
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    unsubscribe = "<https://herald.example/u/" + "t" * 180 + ">"
    for calendar in (None, ics):
        raw = build_mime(
            Rendered(subject="Entretien chez Société — étape 2 " * 3, html=html, text=text),
            mail_from="Acme Recrutement <jobs@acme.example>",
            to_email="zoe@example.com",
            to_name="Zoë Ünal",
            message_id="<abc@acme.example>",
            date=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
            headers={"List-Unsubscribe": unsubscribe, "X-Evil": "a\r\nBcc: victim@example.com"},
            calendar=calendar,
        )
        assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        msg = message_from_bytes(raw, policy=policy.default)
        assert msg["Subject"] == "Entretien chez Société — étape 2 " * 3
        assert msg["To"].addresses[0].display_name == "Zoë Ünal"
        assert msg["To"].addresses[0].addr_spec == "zoe@example.com"
        assert msg["List-Unsubscribe"] == unsubscribe
        assert msg["Bcc"] is None and "Bcc: victim" in msg["X-Evil"]  # one header, not two
        assert msg["Message-ID"] == "<abc@acme.example>" and msg["Date"].datetime.year == 2026
        assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
        assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == html
        parts = [p.get_content_type() for p in msg.walk()]
        if calendar is None:
            assert parts == ["multipart/alternative", "text/plain", "text/html"]
        else:
            assert parts == [
                "multipart/mixed",
                "multipart/alternative",
                "text/plain",
                "text/html",
                "text/calendar",
                "application/ics",
            ]
            inline = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
            assert inline.get_param("method") == "REQUEST"
            assert inline.get_content() == ics.decode()
            attached = next(p for p in msg.walk() if p.get_content_type() == "application/ics")
            assert attached.get_filename() == "invite.ics" and attached.get_content() == ics


def test_a_built_in_subject_that_cannot_be_rendered_yet_is_left_to_the_send(ctx):
    from app.mail.render import builtin_subject

    assert builtin_subject("team_invite", {"org": {"name": "Acme"}}) is None  # no inviter
    assert builtin_subject("version", {}) is None  # an org's template: rendered when sent
    assert builtin_subject("password_reset", {}) == "Reset your Herald password"
