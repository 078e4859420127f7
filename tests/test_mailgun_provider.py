"""The Mailgun provider against a local server speaking Mailgun's HTTP contract (no database)."""

from __future__ import annotations

import base64
import socket

import pytest

from app.providers.base import Accepted, OutgoingMessage, Permanent, Transient
from app.providers.mailgun import MailgunProvider, MailgunSettings
from tests import mailgun_contract
from tests.mailgun_contract import MailgunContract

mailgun_server = mailgun_contract.mailgun_server  # registers the fixture in this module

RAW = (
    b"From: Herald <jobs@mg.herald.test>\r\n"
    b"To: Ana <ana@example.com>\r\n"
    b"Subject: =?utf-8?q?Interview_invitation_=E2=80=93_Backend?=\r\n"
    b"Message-ID: <m1@herald.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Hello Ana,  \r\n"
    b"--\r\n"
    b"Gr\xc3\xbc\xc3\x9fe, Herald\r\n\r\n"
)

KEY_FOR_CLOSED = "key-closed-port-000"


def _msg(ref: int, rcpt: str = "ana@example.com", raw: bytes = RAW) -> OutgoingMessage:
    return OutgoingMessage(
        ref=ref,
        raw=raw,
        mail_from="bounces@mg.herald.test",
        rcpt=rcpt,
        message_id=f"m{ref}@herald.test",
        idempotency_key=f"idem-{ref}",
    )


def _provider(server: MailgunContract, **overrides: object) -> MailgunProvider:
    tag_for = overrides.pop("tag_for", None)
    values: dict[str, object] = {
        "api_key": server.key,
        "domain": server.domain,
        "base_url": server.url,
        "read_timeout": 5.0,
    }
    values.update(overrides)
    return MailgunProvider(MailgunSettings(**values), tag_for=tag_for)  # type: ignore[arg-type]


def _send_all(provider: MailgunProvider, messages: list[OutgoingMessage]) -> list:
    """Each message through the provider's one sending call, in turn."""
    return [provider.send(message) for message in messages]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- accepted -------------------------------------------------------------------------------


def test_accepted_posts_raw_bytes_with_fields_and_auth(mailgun_server: MailgunContract) -> None:
    provider = _provider(mailgun_server, tag_for=lambda ref: "invitation" if ref == 1 else None)
    other = RAW.replace(b"Ana", b"Bo")
    results = _send_all(provider, [_msg(1), _msg(2, "bo@example.com", other)])

    assert results == [
        Accepted(1, provider_id=f"20260101000000.000001@{mailgun_server.domain}",
                 response="Queued. Thank you."),
        Accepted(2, provider_id=f"20260101000000.000002@{mailgun_server.domain}",
                 response="Queued. Thank you."),
    ]  # fmt: skip
    assert len(mailgun_server.requests) == 2  # exactly one request per message
    first, second = mailgun_server.requests
    expected_auth = "Basic " + base64.b64encode(f"api:{mailgun_server.key}".encode()).decode()
    for req in (first, second):
        assert req.method == "POST"
        assert req.path == f"/v3/{mailgun_server.domain}/messages.mime"
        assert req.auth_ok and req.authorization == expected_auth
        assert req.fields["o:tracking"] == "no"
        assert req.fields["o:tracking-opens"] == "no"
        assert req.fields["o:tracking-clicks"] == "no"
        assert set(req.files) == {"message"}
    assert first.message == RAW  # byte for byte: CRLFs, 8bit, trailing spaces, "--" line
    assert second.message == other
    assert first.fields["to"] == "ana@example.com"
    assert second.fields["to"] == "bo@example.com"
    assert first.fields["v:herald-id"] == "1"
    assert second.fields["v:herald-id"] == "2"
    assert first.fields["o:tag"] == "invitation"
    assert "o:tag" not in second.fields
    assert {name for name, _ in first.field_list} == {
        "to",
        "v:herald-id",
        "o:tag",
        "o:tracking",
        "o:tracking-opens",
        "o:tracking-clicks",
    }


def test_400_from_the_contract_is_permanent_and_the_batch_goes_on(
    mailgun_server: MailgunContract,
) -> None:
    results = _send_all(_provider(mailgun_server), [_msg(1, rcpt=""), _msg(2)])

    assert isinstance(results[0], Permanent) and results[0].ref == 1
    assert "to parameter is missing" in results[0].reason
    assert isinstance(results[1], Accepted)
    assert len(mailgun_server.requests) == 2


def test_scripted_400_keeps_mailguns_text(mailgun_server: MailgunContract) -> None:
    text = "'to' parameter is not a valid address. please check documentation"
    mailgun_server.script(400, body={"message": text})
    [result] = _send_all(_provider(mailgun_server), [_msg(7)])

    assert isinstance(result, Permanent) and result.ref == 7
    assert text in result.reason


def test_413_is_permanent(mailgun_server: MailgunContract) -> None:
    mailgun_server.script(413, body={"message": "request entity too large"})
    [result] = _send_all(_provider(mailgun_server), [_msg(1)])

    assert isinstance(result, Permanent)
    assert "413" in result.reason and "too large" in result.reason


# ---- the provider's trouble ------------------------------------------------------------------


def test_wrong_key_is_provider_trouble_without_the_key(mailgun_server: MailgunContract) -> None:
    wrong = "key-wrong-secret-987654"
    feed = [_msg(1)]
    results = _send_all(_provider(mailgun_server, api_key=wrong), feed)

    [result] = results
    assert isinstance(result, Transient) and result.provider_trouble
    assert "Mailgun refused the API key (401)" in result.reason
    assert wrong not in result.reason and mailgun_server.key not in result.reason
    assert len(mailgun_server.requests) == 1 and not mailgun_server.requests[0].auth_ok


def test_403_is_provider_trouble(mailgun_server: MailgunContract) -> None:
    mailgun_server.script(403, body="Forbidden")
    [result] = _send_all(_provider(mailgun_server), [_msg(1)])

    assert isinstance(result, Transient) and result.provider_trouble
    assert "API key (403)" in result.reason


def test_unknown_domain_is_provider_trouble_naming_it(mailgun_server: MailgunContract) -> None:
    feed = [_msg(1)]
    [result] = _send_all(_provider(mailgun_server, domain="nope.example.test"), feed)

    assert isinstance(result, Transient) and result.provider_trouble
    assert "nope.example.test" in result.reason
    assert mailgun_server.requests[0].path == "/v3/nope.example.test/messages.mime"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_provider_trouble_one_request_and_stops(
    mailgun_server: MailgunContract, status: int
) -> None:
    mailgun_server.script(status)
    feed = [_msg(1)]
    results = _send_all(_provider(mailgun_server), feed)

    [result] = results
    assert isinstance(result, Transient) and result.provider_trouble and result.ref == 1
    assert f"({status})" in result.reason
    assert result.unconfirmed == (status == 502)  # a gateway error: maybe accepted
    assert len(mailgun_server.requests) == 1  # the SDK did not retry


def test_read_timeout_is_provider_trouble(mailgun_server: MailgunContract) -> None:
    mailgun_server.script("timeout", delay=3.0)
    feed = [_msg(1)]
    [result] = _send_all(_provider(mailgun_server, read_timeout=0.5), feed)

    assert isinstance(result, Transient) and result.provider_trouble
    assert result.unconfirmed  # the POST went out: Mailgun may have taken it
    assert mailgun_server.url in result.reason and "did not answer" in result.reason
    assert len(mailgun_server.requests) == 1


def test_connection_refused_is_provider_trouble() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    settings = MailgunSettings(api_key=KEY_FOR_CLOSED, domain="mg.herald.test", base_url=url)
    feed = [_msg(1)]
    [result] = _send_all(MailgunProvider(settings), feed)

    assert isinstance(result, Transient) and result.provider_trouble
    assert result.reason == f"Could not reach {url}: connection refused"
    assert KEY_FOR_CLOSED not in result.reason


def test_the_sdk_never_logs_the_email_it_failed_to_send() -> None:
    """The SDK logs a failed request with its whole body (CRITICAL): through Herald's log
    handler that is one short warning, without the message, its links or its addresses."""
    import io
    import logging

    from app.logs import RedactingFilter, RedactingFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    sdk = logging.getLogger("mailgun.endpoints")
    was_disabled, sdk.disabled = sdk.disabled, False  # (alembic's fileConfig in other tests)
    try:
        url = f"http://127.0.0.1:{_closed_port()}"
        settings = MailgunSettings(api_key=KEY_FOR_CLOSED, domain="mg.herald.test", base_url=url)
        secret = b"Accept here: https://herald.test/i/" + b"t" * 43
        (_send_all(MailgunProvider(settings), [_msg(1, raw=RAW + secret)]))
    finally:
        root.removeHandler(handler)
        sdk.disabled = was_disabled
    logged = out.getvalue()
    assert "mailgun" in logged and "CRITICAL" not in logged  # it did log, briefly
    assert "Accept here" not in logged and "t" * 43 not in logged and "ana@" not in logged
    assert all(len(line) < 400 for line in logged.splitlines())


# ---- rate limit -----------------------------------------------------------------------------


def test_429_uses_retry_after_one_request_not_trouble(mailgun_server: MailgunContract) -> None:
    mailgun_server.script(429, headers={"Retry-After": "2"}, body={"message": "Too many"})
    feed = [_msg(1)]
    [result] = _send_all(_provider(mailgun_server), feed)

    assert result == Transient(1, result.reason, retry_after=2.0, provider_trouble=False)
    assert result.reason.startswith("Mailgun rate limit")
    assert len(mailgun_server.requests) == 1  # no SDK retry, no sleep on Retry-After


@pytest.mark.parametrize("header", [None, "soon", "-5"])
def test_429_without_usable_retry_after_waits_60(
    mailgun_server: MailgunContract, header: str | None
) -> None:
    mailgun_server.script(429, headers={"Retry-After": header} if header else None)
    [result] = _send_all(_provider(mailgun_server), [_msg(1)])

    assert isinstance(result, Transient) and not result.provider_trouble
    assert result.retry_after == 60.0


# ---- check() -------------------------------------------------------------------------------


def test_check_good_key(mailgun_server: MailgunContract) -> None:
    assert _provider(mailgun_server).check() is None
    [req] = mailgun_server.requests
    assert req.method == "GET" and req.path == f"/v3/domains/{mailgun_server.domain}"
    assert req.auth_ok


def test_check_bad_key(mailgun_server: MailgunContract) -> None:
    wrong = "key-wrong-secret-987654"
    message = _provider(mailgun_server, api_key=wrong).check()

    assert message is not None and message.startswith("The API key was refused (401).")
    assert wrong not in message


def test_check_unknown_domain(mailgun_server: MailgunContract) -> None:
    message = _provider(mailgun_server, domain="x.example.test").check()

    assert message is not None and message.startswith("Mailgun has no domain 'x.example.test'.")


def test_check_unreachable_never_raises() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    settings = MailgunSettings(api_key="key-a", domain="mg.herald.test", base_url=url)

    assert MailgunProvider(settings).check() == f"Could not reach {url}: connection refused"


def test_a_host_that_does_not_resolve_is_said_plainly() -> None:
    url = "https://api.herald-test.invalid"  # (.invalid never resolves)
    settings = MailgunSettings(api_key="key-a", domain="mg.herald.test", base_url=url)
    problem = MailgunProvider(settings).check()
    assert problem.startswith(f"Could not reach {url}: its name could not be looked up (DNS)")
    assert "Errno" not in problem
    [result] = _send_all(MailgunProvider(settings), [_msg(1)])
    assert isinstance(result, Transient) and result.provider_trouble
    assert "could not be looked up" in result.reason


def test_check_timeout(mailgun_server: MailgunContract) -> None:
    mailgun_server.script("timeout", delay=3.0)
    message = _provider(mailgun_server, read_timeout=0.5).check()

    assert message is not None and mailgun_server.url in message


# ---- settings ------------------------------------------------------------------------------


def test_region_picks_the_api_host() -> None:
    assert MailgunSettings("k", "d").api_url == "https://api.mailgun.net"
    assert MailgunSettings("k", "d", region="eu").api_url == "https://api.eu.mailgun.net"
    assert MailgunSettings("k", "d", base_url="http://127.0.0.1:9/").api_url == (
        "http://127.0.0.1:9"
    )
    with pytest.raises(ValueError, match="region"):
        MailgunSettings("k", "d", region="asia")
    with pytest.raises(ValueError, match="timeouts"):
        MailgunSettings("k", "d", read_timeout=600)
