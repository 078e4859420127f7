"""The SMTP provider through its one sending call: the right envelope (VERP return path) for each
message, refusals classified, a server in trouble said in its own words, a connection that keeps
going after a refused message, and nothing resent when the end of a message is unconfirmed."""

from __future__ import annotations

from app.providers import Accepted, OutgoingMessage, Permanent, Transient
from app.providers.smtp import SMTPProvider, SMTPSettings
from tests.conftest import SINK_PORT, closed_port
from tests.scripted_smtp import ScriptedSMTP

RAW = b"From: a@herald.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n.dot\r\n"


def _msg(ref: int, rcpt: str, org_id: int | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        ref, RAW, "jobs@acme.test", rcpt, f"<m{ref}@acme.test>", f"k{ref}", org_id=org_id
    )


def _delivered(sink, count: int) -> list[tuple[str, list[str]]]:
    """The envelopes the sink received (after waiting for `count` of them)."""
    assert sink.wait_for_count(count, 5)
    return [(m["from"], m["to"]) for m in sink.messages]


def test_each_message_goes_with_its_own_envelope_on_one_connection(sink):
    verp = SMTPProvider(
        SMTPSettings("127.0.0.1", SINK_PORT, bounce_domain="bounce.test"),
        verp=lambda ref: f"bounces+{ref}-tag",
    )
    plain = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    assert isinstance(verp.send(_msg(1, "one@example.com")), Accepted)
    assert isinstance(verp.send(_msg(2, "two@example.com")), Accepted)
    assert isinstance(plain.send(_msg(3, "three@example.com")), Accepted)
    verp.close()
    plain.close()
    assert _delivered(sink, 3) == [
        ("bounces+1-tag@bounce.test", ["one@example.com"]),
        ("bounces+2-tag@bounce.test", ["two@example.com"]),
        ("bounces+3@acme.test", ["three@example.com"]),
    ]
    assert b"\r\n..dot\r\n" not in sink.messages[0]["data"]  # dot-stuffed on the wire only
    assert b"\r\n.dot\r\n" in sink.messages[0]["data"]


def test_the_signer_given_at_construction_signs_by_org(sink):
    class Signer:
        def sign(self, raw: bytes) -> bytes:
            return b"DKIM-Signature: v=1; test\r\n" + raw

    provider = SMTPProvider(
        SMTPSettings("127.0.0.1", SINK_PORT), dkim=lambda org: Signer() if org == 7 else None
    )
    assert isinstance(provider.send(_msg(1, "one@example.com", org_id=7)), Accepted)
    assert isinstance(provider.send(_msg(2, "two@example.com", org_id=8)), Accepted)
    provider.close()
    assert sink.wait_for_count(2, 5)
    signed, unsigned = (m["data"] for m in sink.messages)
    assert signed.startswith(b"DKIM-Signature: v=1; test") and b"DKIM" not in unsigned


def test_a_message_that_cannot_be_signed_fails_alone_and_the_next_goes(sink):
    class Broken:
        def sign(self, raw: bytes) -> bytes:
            raise ValueError("boom")

    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT), dkim=lambda org: Broken())
    result = provider.send(_msg(1, "one@example.com", org_id=1))
    assert isinstance(result, Permanent) and "boom" in result.reason
    provider.dkim = None
    assert isinstance(provider.send(_msg(2, "two@example.com")), Accepted)
    provider.close()
    assert [to for _f, to in _delivered(sink, 1)] == [["two@example.com"]]


def test_a_refused_recipient_is_permanent_and_the_connection_goes_on():
    rcpts = []

    def script(number, verb, state):
        if verb == "RCPT":
            rcpts.append(number)
            if len(rcpts) == 2:
                return "550 5.1.1 No such user"
        return None

    server = ScriptedSMTP(script)
    provider = SMTPProvider(SMTPSettings("127.0.0.1", server.port))
    assert isinstance(provider.send(_msg(1, "one@example.com")), Accepted)
    refused = provider.send(_msg(2, "nobody@example.com"))
    assert isinstance(provider.send(_msg(3, "three@example.com")), Accepted)
    provider.close()
    server.close()
    assert isinstance(refused, Permanent) and "550 5.1.1" in refused.reason
    assert [to for _f, to, _b in server.delivered] == [["one@example.com"], ["three@example.com"]]
    assert server.connections == 1


def test_a_421_to_mail_is_provider_trouble_with_its_own_words():
    """RFC 5321: 421 means the server closes: provider trouble (the breaker counts it, the
    message fails over), never a quiet reconnect that sends it anyway."""
    mails = []

    def script(number, verb, state):
        if verb == "MAIL":
            mails.append(number)
            if len(mails) == 2:
                return ("421 4.7.0 Too many errors, closing connection", "close")
        return None

    server = ScriptedSMTP(script)
    provider = SMTPProvider(SMTPSettings("127.0.0.1", server.port))
    assert isinstance(provider.send(_msg(1, "one@example.com")), Accepted)
    result = provider.send(_msg(2, "two@example.com"))
    provider.close()
    server.close()
    assert isinstance(result, Transient) and result.provider_trouble
    assert "421 4.7.0 Too many errors" in result.reason
    assert [to for _f, to, _b in server.delivered] == [["one@example.com"]]


def test_a_server_that_cannot_be_reached_is_provider_trouble_then_the_next_send_reconnects(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", closed_port()))
    failed = provider.send(_msg(1, "one@example.com"))
    assert isinstance(failed, Transient) and failed.provider_trouble
    assert "connection refused" in failed.reason
    provider.settings = SMTPSettings("127.0.0.1", SINK_PORT)  # the server is back
    assert isinstance(provider.send(_msg(2, "two@example.com")), Accepted)
    provider.close()
    assert _delivered(sink, 1) == [("bounces+2@acme.test", ["two@example.com"])]


def test_a_connection_idle_too_long_is_checked_and_replaced_when_dropped(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT, check_after_idle=0.0))
    assert isinstance(provider.send(_msg(1, "one@example.com")), Accepted)
    provider.close()  # as a server dropping an idle connection would
    assert isinstance(provider.send(_msg(2, "two@example.com")), Accepted)
    assert isinstance(provider.send(_msg(3, "three@example.com")), Accepted)  # NOOP, then send
    provider.close()
    assert len(_delivered(sink, 3)) == 3


def test_a_hang_up_after_the_message_went_is_unconfirmed():
    """The end of the message went and no answer came: it may have been delivered, so it is
    never sent again automatically (the record says so)."""

    def script(number, verb, state):
        return ("", "close") if verb == "END" else None

    server = ScriptedSMTP(script)
    provider = SMTPProvider(SMTPSettings("127.0.0.1", server.port))
    result = provider.send(_msg(1, "one@example.com"))
    provider.close()
    server.close()
    assert isinstance(result, Transient) and result.provider_trouble and result.unconfirmed
    assert "may have been delivered" in result.reason
