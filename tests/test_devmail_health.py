"""Dev mailbox sink and pages; /healthz; headers; logs without personal data; migrations."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from app.config import Config
from app.devmail import store
from app.devmail.sink import start_sink
from app.extensions import db
from tests.conftest import _free_port


def _send(port: int, subject: str, html: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", subject
    msg.set_content("plain part")
    msg.add_alternative(html, subtype="html")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg)


def test_mailbox_pages_through_every_mail(app, client, factories, login_as, tmp_path):
    import re

    raw = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: Mail {n}\r\n\r\nHi\r\n"
    for n in range(55):
        store.save(str(tmp_path), raw.replace(b"{n}", str(n).encode()), "a@x", ["b@x.test"])
    store.save(str(tmp_path), raw.replace(b"{n}", b"not yours"), "a@x", ["c@x.test"])
    org = factories.make_org()
    login_as(factories.make_user(org, email="b@x.test"), org)  # mail with no row: its recipient
    app.config["DEVMAIL_DIR"], old = str(tmp_path), app.config["DEVMAIL_DIR"]
    try:
        first = client.get("/dev/mail/").text
        assert "Mail 54<" in first and "Mail 5<" in first and "Mail 4<" not in first
        assert 'aria-label="Dev mailbox pages"' in first and "Newer" not in first
        older = re.search(r'href="(/dev/mail/\?before=[\w-]+)" rel="next">Older', first).group(1)
        second = client.get(older).text
        assert "Mail 4<" in second and "Mail 0<" in second and "Mail 5<" not in second
        newer = re.search(r'href="(/dev/mail/\?after=[\w-]+)" rel="prev">', second).group(1)
        assert "Mail 54<" in client.get(newer).text and "Older →" not in second
        assert "not yours" not in first + second
    finally:
        app.config["DEVMAIL_DIR"] = old


def test_sink_stores_and_mailbox_shows(app, client, factories, login_as, tmp_path):
    port = _free_port()
    controller = start_sink(str(tmp_path), port=port)
    try:
        _send(port, "Hello sink", "<!DOCTYPE html><p>Hi <script>alert(1)</script></p>")
    finally:
        controller.stop()
    [mail] = store.list_mails(str(tmp_path)).mails
    assert mail.subject == "Hello sink" and mail.envelope_to == ["b@example.com"]

    org = factories.make_org()
    login_as(factories.make_user(org, email="b@example.com"), org)  # mail Herald has no row for
    app.config["DEVMAIL_DIR"], old = str(tmp_path), app.config["DEVMAIL_DIR"]
    try:
        assert "Hello sink" in client.get("/dev/mail/").get_data(as_text=True)
        page = client.get(f"/dev/mail/{mail.key}").get_data(as_text=True)
        assert (
            "plain part" in page
            and 'sandbox="allow-popups allow-popups-to-escape-sandbox" src="/dev/mail/' in page
        )
        html = client.get(f"/dev/mail/{mail.key}/html")
        # the mail's doctype stays first (else the frame renders in quirks mode)
        assert html.get_data(as_text=True).startswith('<!DOCTYPE html><base target="_blank">')
        assert "script" in html.get_data(as_text=True)  # shown as received, but cannot run:
        assert "default-src 'none'" in html.headers["Content-Security-Policy"]
        assert client.get("/dev/mail/..%2F..%2Fetc%2Fpasswd").status_code == 404
        assert client.get("/dev/mail/20260101000000000000-" + "0" * 32).status_code == 404
    finally:
        app.config["DEVMAIL_DIR"] = old


def test_mailbox_is_off_in_production_config(app, client, factories, login_as):
    org = factories.make_org()
    login_as(factories.make_user(org), org)
    production = Config(HERALD_ENV="production", SECRET_KEY="x", ENCRYPTION_KEYS="k")
    assert production.DEVMAIL_ENABLED is False
    app.config["DEVMAIL_ENABLED"] = False
    try:
        assert client.get("/dev/mail/").status_code == 404
        assert "Dev mailbox" not in client.get("/").get_data(as_text=True)
    finally:
        app.config["DEVMAIL_ENABLED"] = True


def test_healthz_reports_and_fails_when_redis_is_down(app, client):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["redis"] == "ok"
    assert set(body["queues"]) == {"herald-periodic", "herald-send", "herald-default"}
    assert "workers" in body and "sweeper_last_run" in body

    from redis import Redis

    real = app.extensions["redis"]
    app.extensions["redis"] = Redis(host="127.0.0.1", port=_free_port(), socket_connect_timeout=1)
    try:
        response = client.get("/healthz")
    finally:
        app.extensions["redis"] = real
    assert response.status_code == 503 and response.get_json()["redis"] == "down"


def test_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert "<script>" not in html and 'hx-headers=\'{"X-CSRFToken"' in html


def test_logs_carry_no_email_addresses(app, client, caplog, post, ctx, sink, run_worker):
    with caplog.at_level(logging.DEBUG):
        post(
            "/signup",
            {
                "org_name": "Logs Inc",
                "name": "Lou",
                "email": "lou.secret@example.com",
                "password": "a-long-password",
            },
        )
        post("/login", {"email": "lou.secret@example.com", "password": "wrong-password-x"})
        run_worker()
        logging.getLogger("app.careless").warning("bounce for %s", "lou.secret@example.com")
    assert len(sink.messages) == 1
    messages = [record.getMessage() for record in caplog.records]
    assert "bounce for <email>" in messages  # even a careless log line is redacted
    assert not [m for m in messages if "lou.secret" in m]


def test_redaction_filter_hides_addresses_and_secrets():
    from app.logs import redact

    assert redact("sent to ana@example.org ok") == "sent to <email> ok"
    assert "hunter2" not in redact("login password=hunter2")
    line = '"GET /reset/eyJ1IjoxLCJmIjoiYWJjIn0.Z2xv.c2lnbmF0dXJl HTTP/1.1" 200'
    assert redact(line) == '"GET /reset/<token> HTTP/1.1" 200'
    assert redact("GET /join/abc HTTP/1.1") == "GET /join/abc HTTP/1.1"  # short: not a token


def test_migrations_have_one_head_and_match_the_models(ctx):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from flask import current_app

    from app.extensions import db

    config = current_app.extensions["migrate"].migrate.get_config()
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_metrics_report_sends_latency_queues_and_breakers(app, ctx, factories, sink, run_worker):
    org = factories.make_org()
    account = factories.make_provider_account(org, settings={"host": "127.0.0.1", "port": 1})
    from app.providers.routing import breaker

    for _ in range(app.config["BREAKER_THRESHOLD"]):
        breaker().failure(account.key)
    factories.make_message(org)
    account.enabled = False
    db.session.commit()
    run_worker()
    client = app.test_client()
    body = client.get("/metrics").get_data(as_text=True)  # loopback, no token configured
    assert 'herald_messages{lane="transactional",provider="smtp",status="sent"} 1.0' in body
    assert 'herald_provider_answers_total{outcome="accepted",provider="smtp"} 1.0' in body
    assert 'herald_send_latency_ms_count{provider="smtp"} 1.0' in body
    assert 'herald_queue_depth{queue="herald-send"} 0.0' in body
    assert f'herald_breaker_state{{provider="{account.key}"}} 2.0' in body
    assert "candidate@example.com" not in body
    health = client.get("/healthz").get_json()
    assert health["breakers"]["open"] == 1 and health["status"] == "ok"
    assert account.key not in str(health)
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 404


def test_metrics_token_is_required_when_set(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret")
    client = app.test_client()
    assert client.get("/metrics").status_code == 404
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and "herald_messages" in ok.get_data(as_text=True)


def test_mailbox_lists_attachments_and_downloads_them(app, client, factories, login_as, tmp_path):
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = "Invite", "a@example.com", "b@example.com"
    mail.set_content("See the calendar entry.")
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    mail.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
    key = store.save(str(tmp_path), mail.as_bytes(), "a@example.com", ["b@example.com"])
    org = factories.make_org()
    login_as(factories.make_user(org, email="b@example.com"), org)
    app.config["DEVMAIL_DIR"], old = str(tmp_path), app.config["DEVMAIL_DIR"]
    try:
        page = client.get(f"/dev/mail/{key}").get_data(as_text=True)
        assert f'href="/dev/mail/{key}/attachments/invite.ics" download>invite.ics</a>' in page
        download = client.get(f"/dev/mail/{key}/attachments/invite.ics")
        assert download.status_code == 200 and download.data == ics
        assert download.headers["Content-Disposition"] == 'attachment; filename="invite.ics"'
        assert client.get(f"/dev/mail/{key}/attachments/other.ics").status_code == 404
    finally:
        app.config["DEVMAIL_DIR"] = old
