"""What users type reaches the mail as text: a name cannot add a header, and the text part is not
HTML-escaped."""

from __future__ import annotations

from app.extensions import db
from app.mail.outbox import queue_message


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
