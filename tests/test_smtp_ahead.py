"""MAIL and RCPT sent ahead of a message (while it is built) never change what is delivered:
the right envelope for the message that goes, nothing for one that never comes."""

from __future__ import annotations

import select

from app.providers import Accepted, OutgoingMessage
from app.providers.smtp import SMTPProvider, SMTPSettings
from tests.conftest import SINK_PORT

RAW = b"From: a@herald.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


def _msg(ref: int, rcpt: str) -> OutgoingMessage:
    return OutgoingMessage(ref, RAW, "jobs@acme.test", rcpt, f"<m{ref}@acme.test>", f"k{ref}")


def _answered(provider: SMTPProvider) -> None:
    """Wait until the server has answered the MAIL sent ahead (so advance() sends RCPT)."""
    assert select.select([provider._conn.sock], [], [], 5)[0]


def _delivered(sink, count: int) -> list[tuple[str, list[str]]]:
    """The envelopes the sink received (after waiting for `count` of them)."""
    assert sink.wait_for_count(count, 5)
    return [(m["from"], m["to"]) for m in sink.messages]


def _send(provider: SMTPProvider, msg: OutgoingMessage) -> None:
    (result,) = provider.send_batch([msg])
    assert isinstance(result, Accepted), result


def test_a_message_announced_ahead_goes_with_its_own_envelope(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))  # opens the connection
    provider.announce(2, "jobs@acme.test")
    _answered(provider)
    provider.advance("two@example.com")  # RCPT too, once MAIL is answered
    assert provider._ahead.rcpt == "two@example.com"
    _send(provider, _msg(2, "two@example.com"))
    provider.announce(3, "jobs@acme.test")  # MAIL only: RCPT goes when the message is sent
    _send(provider, _msg(3, "three@example.com"))
    provider.close()

    assert _delivered(sink, 3) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+2@acme.test", ["two@example.com"]),
        ("bounces+3@acme.test", ["three@example.com"]),
    ]


def test_a_message_announced_and_never_sent_is_reset_and_delivers_nothing(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))
    for ref in (2, 3):  # stopped before it went (paused, suppressed, failed to build)
        provider.announce(ref, "jobs@acme.test")
        _answered(provider)
        provider.advance(f"stopped{ref}@example.com")
        assert provider._ahead.rcpt == f"stopped{ref}@example.com"
    _send(provider, _msg(4, "four@example.com"))  # a different message comes instead
    provider.announce(5, "jobs@acme.test")
    provider.close()  # the batch ends with an announced message

    assert _delivered(sink, 2) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+4@acme.test", ["four@example.com"]),
    ]


def test_nothing_is_sent_ahead_on_a_connection_that_sat_idle(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT, check_after_idle=0))
    _send(provider, _msg(1, "one@example.com"))
    provider.announce(2, "jobs@acme.test")  # idle: it is checked (NOOP) when the message goes
    provider.advance("two@example.com")
    _send(provider, _msg(2, "two@example.com"))
    provider.close()
    assert sink.wait_for_count(2, 5)
    assert [m["to"] for m in sink.messages] == [["one@example.com"], ["two@example.com"]]


class _BrokenSigner:
    def sign(self, raw: bytes) -> bytes:
        raise ValueError("boom")


def test_a_message_that_cannot_be_signed_after_rcpt_went_ahead_leaves_the_next_ones_intact(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))
    provider.announce(2, "jobs@acme.test")
    _answered(provider)
    provider.advance("two@example.com")
    broken = OutgoingMessage(
        2, RAW, "jobs@acme.test", "two@example.com", "<m2@a>", "k2", signer=_BrokenSigner()
    )
    (result,) = provider.send_batch([broken])
    assert not isinstance(result, Accepted) and "boom" in result.reason
    for ref in (3, 4):  # replies stay in step: each is accepted for itself, at once
        provider.announce(ref, "jobs@acme.test")
        _send(provider, _msg(ref, f"n{ref}@example.com"))
    provider.close()
    assert sink.wait_for_count(3, 5)
    assert [m["to"] for m in sink.messages] == [
        ["one@example.com"],
        ["n3@example.com"],
        ["n4@example.com"],
    ]


def test_data_ahead_sends_the_message_and_an_abandoned_one_is_never_delivered(sink):
    """DATA goes ahead once RCPT is answered. A message abandoned after that (the server
    waits for its body) is ended by hanging up: never delivered; the next one reconnects."""
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))
    for ref in (2, 3):
        provider.announce(ref, "jobs@acme.test")
        for _step in ("rcpt", "data"):
            _answered(provider)
            provider.advance(f"n{ref}@example.com")
        assert provider._ahead.data
        if ref == 2:
            _send(provider, _msg(2, "n2@example.com"))
    _send(provider, _msg(4, "four@example.com"))  # 3 was abandoned in the middle of DATA
    provider.close()
    assert _delivered(sink, 3) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+2@acme.test", ["n2@example.com"]),
        ("bounces+4@acme.test", ["four@example.com"]),
    ]
    assert sink.messages[1]["data"] == sink.messages[2]["data"] == RAW
