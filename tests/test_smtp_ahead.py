"""MAIL and RCPT sent ahead of a message (while it is built) never change what is delivered:
the right envelope for the message that goes, nothing for one that never comes."""

from __future__ import annotations

import re
import select

import pytest

from app.providers import Accepted, OutgoingMessage, Permanent, Transient
from app.providers.smtp import SMTPProvider, SMTPSettings
from tests.conftest import SINK_PORT, closed_port
from tests.scripted_smtp import ScriptedSMTP

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


# ---- a server that pipelines (RFC 2920) -----------------------------------------------------


def test_to_a_server_that_pipelines_the_next_envelope_goes_with_the_body_before(sink):
    """MAIL, RCPT and DATA of the next message travel in the same write as this message's
    body; each message still arrives with its own envelope, once."""
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))  # opens the connection (EHLO: PIPELINING)
    provider.announce(2, "jobs@acme.test", "two@example.com")  # all three commands at once
    assert (provider._ahead.rcpt, provider._ahead.data) == ("two@example.com", True)
    for ref in (2, 3):
        provider.expect_next(ref + 1, "jobs@acme.test", f"n{ref + 1}@example.com")
        _send(provider, _msg(ref, "two@example.com" if ref == 2 else f"n{ref}@example.com"))
        assert provider._ahead.path == f"bounces+{ref + 1}@acme.test"  # went with the body
        provider.announce(ref + 1, "jobs@acme.test", f"n{ref + 1}@example.com")  # nothing new
    _send(provider, _msg(4, "n4@example.com"))
    provider.close()

    assert _delivered(sink, 4) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+2@acme.test", ["two@example.com"]),
        ("bounces+3@acme.test", ["n3@example.com"]),
        ("bounces+4@acme.test", ["n4@example.com"]),
    ]


def test_an_expected_message_that_does_not_come_is_never_delivered(sink):
    """The server waits for the body of a message whose commands went ahead; when another
    message comes instead (the expected one was stopped), the connection is dropped: the
    stopped one is never delivered and the other goes on a new connection."""
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    provider.expect_next(2, "jobs@acme.test", "stopped@example.com")
    _send(provider, _msg(1, "one@example.com"))
    _send(provider, _msg(3, "three@example.com"))
    provider.expect_next(4, "jobs@acme.test", "stopped4@example.com")
    _send(provider, _msg(5, "five@example.com"))
    provider.close()  # the batch ends with a message expected

    assert _delivered(sink, 3) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+3@acme.test", ["three@example.com"]),
        ("bounces+5@acme.test", ["five@example.com"]),
    ]


def test_closing_with_a_group_ahead_delivers_nothing_and_the_provider_goes_on(sink):
    """A worker that stops while the server waits for the body of a message whose commands
    went ahead hangs up: that message is never delivered, and the next send reconnects."""
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    provider.expect_next(2, "jobs@acme.test", "stopped@example.com")
    _send(provider, _msg(1, "one@example.com"))
    provider.close()
    _send(provider, _msg(3, "three@example.com"))
    provider.close()
    assert _delivered(sink, 2) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+3@acme.test", ["three@example.com"]),
    ]


def test_a_refused_recipient_in_a_group_is_permanent_and_the_connection_goes_on(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))
    sink.refuse_rcpt = "550 5.1.1 No such user"
    provider.announce(2, "jobs@acme.test", "nobody@example.com")  # MAIL, RCPT, DATA at once
    (result,) = provider.send_batch([_msg(2, "nobody@example.com")])
    assert not isinstance(result, Accepted) and "550 5.1.1 No such user" in result.reason
    sink.refuse_rcpt = None
    connection = provider._conn
    _send(provider, _msg(3, "three@example.com"))
    assert provider._conn is connection  # reset, not hung up
    provider.close()
    assert _delivered(sink, 2) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+3@acme.test", ["three@example.com"]),
    ]


def test_a_campaign_goes_out_the_same_to_a_server_that_does_not_pipeline(
    ctx, factories, sink, run_worker, monkeypatch
):
    """Commands one at a time (MAIL ahead, then RCPT and DATA as each is answered) when the
    server does not offer PIPELINING: every message once, with its own envelope."""
    from app.providers.base import ProviderCache

    monkeypatch.setattr(SMTPProvider, "_shared", ProviderCache())  # connects after the change
    sink.pipelining = False
    org = factories.make_org()
    factories.launch_campaign(org, 5)
    run_worker()
    assert sink.wait_for_count(5, 10)
    assert len(set(sink.message_ids())) == 5
    for message in sink.messages:
        to = re.search(rb"^To: .*<([^>]+)>", message["data"], re.M)
        assert [to.group(1).decode()] == message["to"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_421_to_mail_is_provider_trouble_with_its_own_words(pipelining):
    """RFC 5321: 421 means the server closes. Whether the rest of a pipelined group then finds
    the connection gone, or RSET would, the answer is the 421: provider trouble (the breaker
    counts it, the message fails over), never a quiet reconnect that sends it anyway."""
    mails = []

    def script(number, verb, state):
        if verb == "MAIL":
            mails.append(number)
            if len(mails) == 2:
                return ("421 4.7.0 Too many errors, closing connection", "close")
        return None

    server = ScriptedSMTP(script, pipelining=pipelining)
    provider = SMTPProvider(SMTPSettings("127.0.0.1", server.port))
    _send(provider, _msg(1, "one@example.com"))
    provider.announce(2, "jobs@acme.test", "two@example.com")
    (result,) = provider.send_batch([_msg(2, "two@example.com")])
    provider.close()
    server.close()
    assert isinstance(result, Transient) and result.provider_trouble
    assert "421 4.7.0 Too many errors" in result.reason
    assert [to for _f, to, _b in server.delivered] == [["one@example.com"]]
    assert server.connections == 1


def test_a_354_after_a_refused_recipient_is_hung_up_on_and_delivers_nothing():
    refuse = []

    def script(number, verb, state):
        if verb == "RCPT" and refuse:
            refuse.clear()
            return "550 5.1.1 No such user"
        return None  # and DATA gets 354 anyway, as some servers answer

    server = ScriptedSMTP(script)
    provider = SMTPProvider(SMTPSettings("127.0.0.1", server.port))
    _send(provider, _msg(1, "one@example.com"))
    refuse.append(True)
    provider.announce(2, "jobs@acme.test", "nobody@example.com")
    (refused,) = provider.send_batch([_msg(2, "nobody@example.com")])
    _send(provider, _msg(3, "three@example.com"))
    provider.close()
    server.close()
    assert isinstance(refused, Permanent) and "550 5.1.1" in refused.reason
    assert [to for _f, to, _b in server.delivered] == [["one@example.com"], ["three@example.com"]]
    assert server.connections == 2  # hung up (its RSET would have been read as the body)


def test_the_next_message_named_for_a_send_that_could_not_connect_is_forgotten(sink):
    provider = SMTPProvider(SMTPSettings("127.0.0.1", closed_port()))
    provider.expect_next(99, "jobs@acme.test", "stale@example.com")
    (failed,) = provider.send_batch([_msg(1, "one@example.com")])
    assert isinstance(failed, Transient) and failed.provider_trouble
    provider.settings = SMTPSettings("127.0.0.1", SINK_PORT)  # the server is back
    _send(provider, _msg(2, "two@example.com"))
    assert provider._ahead is None  # nothing went ahead for the stale one
    provider.close()
    assert _delivered(sink, 1) == [("bounces+2@acme.test", ["two@example.com"])]


def test_a_batch_whose_next_messages_are_stopped_delivers_only_the_others(
    ctx, factories, sink, monkeypatch
):
    """The commands of the next message go with each body; when that message is then stopped
    (suppressed, revoked, its lease lost), it is never delivered and each sent one is
    recorded once. What the batch already knows (a suppression, a revoked invitation) is not
    sent ahead, so only the lease lost unknown to it costs a new connection."""
    from sqlalchemy import select, text

    from app.extensions import db
    from app.mail import sending
    from app.models import Event, Invitation, Message
    from app.providers.base import ProviderCache

    monkeypatch.setattr(SMTPProvider, "_shared", ProviderCache())
    connects = []
    real_connect = SMTPProvider._connect
    monkeypatch.setattr(
        SMTPProvider, "_connect", lambda self: connects.append(1) or real_connect(self)
    )
    org = factories.make_org()
    factories.launch_campaign(org, 6)
    ids, token = sending.claim(50)
    rows = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))}
    factories.make_suppression(org, email=rows[ids[1]].to_email)
    db.session.get(Invitation, rows[ids[2]].invitation_id).status = "revoked"
    db.session.commit()
    real_claimed = sending.send_claimed

    def lease_lost_after_the_batch_loaded(batch_ids, batch_token):  # another worker took #5
        real_listed = sending._listed

        def listed(rows_):
            db.session.execute(
                text("UPDATE messages SET lease_token = 'another-worker' WHERE id = :id"),
                {"id": ids[4]},
            )
            db.session.commit()
            return real_listed(rows_)

        monkeypatch.setattr(sending, "_listed", listed)
        return real_claimed(batch_ids, batch_token)

    counts = lease_lost_after_the_batch_loaded(ids, token)  # every answer is read by the end

    assert (counts["sent"], counts["suppressed"]) == (3, 1)
    delivered = sorted(to for m in sink.messages for to in m["to"])
    assert delivered == sorted(rows[i].to_email for i in (ids[0], ids[3], ids[5]))
    db.session.expire_all()
    statuses = [db.session.get(Message, i).status for i in ids]
    assert statuses == ["sent", "suppressed", "cancelled", "sent", "sending", "sent"]
    sent = db.session.scalars(
        select(Event.message_id).where(Event.type == "sent", Event.message_id.in_(ids))
    ).all()
    assert sorted(sent) == sorted([ids[0], ids[3], ids[5]])
    assert len(connects) == 2  # the first, and one after hanging up on #5


# ---- a release asked between the body and its end ---------------------------------------------


def test_a_message_with_a_release_is_delivered_only_after_it_says_yes(sink):
    """The body goes while the caller waits for its answer (its record of the message before,
    in the app); until the final dot nothing is delivered."""
    from dataclasses import replace

    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))
    seen_at_release = []

    def release() -> bool:  # had the end gone already, the sink would deliver #2 now
        seen_at_release.append(sink.wait_for_count(2, 0.3))
        return True

    (result,) = provider.send_batch([replace(_msg(2, "two@example.com"), release=release)])
    assert isinstance(result, Accepted), result
    assert seen_at_release == [False]  # asked once, and #2 was not delivered meanwhile
    # its end goes in its own small write: not held back by Nagle until the body is ACKed
    import socket

    assert provider._conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    provider.close()
    assert _delivered(sink, 2)[1] == ("bounces+2@acme.test", ["two@example.com"])


class _Release:
    """A release that may say it can answer at once (then the body and its end would go in
    one write, after it is asked)."""

    def __init__(self, answer: str, ready: bool) -> None:
        self.answer, self.is_ready, self.asked = answer, ready, 0

    def ready(self) -> bool:
        return self.is_ready

    def __call__(self) -> bool:
        self.asked += 1
        if self.answer == "error":
            raise RuntimeError("the database went away")
        return self.answer == "yes"


@pytest.mark.parametrize("ready", [False, True], ids=["awaited", "ready"])
@pytest.mark.parametrize("answer", ["no", "error"])
def test_a_message_withdrawn_after_its_body_went_is_never_delivered(sink, answer, ready):
    """The release says no (or cannot be asked): the server is in the middle of the message,
    so the connection is dropped without its end. Nothing is delivered, the next one goes."""
    from dataclasses import replace

    from app.providers import Withheld

    release = _Release(answer, ready)

    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, _msg(1, "one@example.com"))
    provider.expect_next(3, "jobs@acme.test", "three@example.com")  # would go with #2's end
    (result,) = provider.send_batch([replace(_msg(2, "two@example.com"), release=release)])
    assert result == Withheld(2)
    assert release.asked == 1
    _send(provider, _msg(3, "three@example.com"))  # on a new connection
    provider.close()

    assert _delivered(sink, 2) == [
        ("bounces+1@acme.test", ["one@example.com"]),
        ("bounces+3@acme.test", ["three@example.com"]),
    ]


def test_a_release_ready_at_once_sends_the_message_whole(sink):
    release = _Release("yes", ready=True)
    from dataclasses import replace

    provider = SMTPProvider(SMTPSettings("127.0.0.1", SINK_PORT))
    _send(provider, replace(_msg(1, "one@example.com"), release=release))
    _send(provider, _msg(2, "two@example.com"))
    provider.close()
    assert release.asked == 1
    assert [to for _f, to in _delivered(sink, 2)] == [["one@example.com"], ["two@example.com"]]


@pytest.mark.parametrize("said", ["421 4.4.2 idle too long, closing", None])
def test_a_server_that_hangs_up_while_the_release_is_asked_delivered_nothing(said):
    """The server ends the session in the middle of the message (a 421, or a plain hang-up)
    while the caller waits: the end would go to a session that is gone. That is provider
    trouble (failover, retry), not a send that may have been delivered."""
    from dataclasses import replace

    server = ScriptedSMTP(lambda number, verb, state: None)
    provider = SMTPProvider(SMTPSettings("127.0.0.1", server.port))
    _send_to = lambda msg: provider.send_batch([msg])  # noqa: E731
    (first,) = _send_to(_msg(1, "one@example.com"))
    assert isinstance(first, Accepted)

    def release() -> bool:
        server.interrupt(said)
        return True

    (result,) = _send_to(replace(_msg(2, "two@example.com"), release=release))
    assert isinstance(result, Transient), result
    assert result.provider_trouble and not result.unconfirmed
    if said:
        assert "421 4.4.2 idle too long" in result.reason
    assert [to for _f, to, _b in server.delivered] == [["one@example.com"]]
    server.close()


def test_a_suppression_added_while_a_batch_runs_stops_a_message_under_way(
    ctx, factories, sink, monkeypatch
):
    """Unknown to the batch, the address is suppressed before its message's begin: the message
    is under way on the connection (DATA, and its body unless the begin's answer was in first)
    and is withdrawn before its end. It is recorded suppressed, never delivered, the others
    go, and no provider is blamed."""
    from sqlalchemy import select

    from app.extensions import db, redis
    from app.mail import sending
    from app.models import Message
    from app.providers.base import ProviderCache

    monkeypatch.setattr(SMTPProvider, "_shared", ProviderCache())
    org = factories.make_org()
    factories.launch_campaign(org, 4)
    ids, token = sending.claim(50)
    rows = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))}
    real_listed = sending._listed

    def listed(rows_):  # the batch has read the suppressions: #3's comes after
        found = real_listed(rows_)
        factories.make_suppression(org, email=rows[ids[2]].to_email)
        db.session.commit()
        return found

    monkeypatch.setattr(sending, "_listed", listed)
    counts = sending.send_claimed(ids, token)

    assert (counts["sent"], counts["suppressed"]) == (3, 1)
    delivered = sorted(to for m in sink.messages for to in m["to"])
    assert delivered == sorted(rows[i].to_email for i in (ids[0], ids[1], ids[3]))
    db.session.expire_all()
    assert [db.session.get(Message, i).status for i in ids] == [
        "sent",
        "sent",
        "suppressed",
        "sent",
    ]
    assert not [k for k in redis.client.keys("herald:breaker:*:fails")]
