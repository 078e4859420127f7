"""Build each message once as RFC 5322 bytes with CRLF line ends; every provider sends them."""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
import uuid
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from app.mail.render import Rendered

_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")  # every control but TAB


@functools.lru_cache(maxsize=256)
def split_address(value: str) -> tuple[str, str]:
    """parseaddr, remembered: every message parses the same few senders."""
    return parseaddr(value)


def message_domain(org: object | None) -> str:
    """The domain of Message-IDs: the org's sending domain, else the deployment's sender's."""
    from flask import current_app

    domain = getattr(org, "sending_domain", None)
    if domain:
        return domain
    return (
        split_address(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "herald.localhost"
    )


def new_message_id(org: object | None = None) -> str:
    """A globally unique Message-ID in the sending domain."""
    return f"<{uuid.uuid4().hex}@{message_domain(org)}>"


def build_mime(
    rendered: Rendered,
    *,
    mail_from: str,
    to_email: str,
    to_name: str | None,
    message_id: str,
    date: datetime,
    headers: dict[str, str] | None = None,
    calendar: bytes | None = None,
) -> bytes:
    """multipart/alternative (text, HTML, and the calendar request when there is one), inside
    multipart/mixed with invite.ics attached when there is a calendar; serialized with CRLF.

    Written out directly (quoted-printable by binascii, headers folded or RFC 2047-encoded only
    when they need it): the email package's generator costs ten times as much for the same
    bytes, and this runs once per message sent. tests/test_outbox.py parses the result back.
    """
    alternative = _boundary()
    lines = [
        _header("From", mail_from),
        _header("To", _address(to_name, to_email)),
        _header("Subject", rendered.subject),
        _header("Date", _date(date.replace(microsecond=0))),
        _header("Message-ID", message_id),
    ]
    lines += [_header(name, value) for name, value in (headers or {}).items()]
    parts = [
        _part("text/plain", _qp(rendered.text)),
        _part("text/html", _qp(rendered.html)),
    ]
    if calendar:
        method = "CANCEL" if b"METHOD:CANCEL" in calendar else "REQUEST"
        parts.append(
            f'Content-Type: text/calendar; charset="utf-8"; method="{method}"\r\n'
            "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n" + _base64(calendar)
        )
    body = _multipart(alternative, parts)
    if calendar:
        mixed = _boundary()
        attachment = (
            'Content-Type: application/ics; Name="invite.ics"\r\nMIME-Version: 1.0\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            'Content-Disposition: attachment; filename="invite.ics"\r\n\r\n' + _base64(calendar)
        )
        inner = f'Content-Type: multipart/alternative; boundary="{alternative}"\r\n'
        inner += "MIME-Version: 1.0\r\n\r\n" + body
        body = _multipart(mixed, [inner, attachment])
        top = f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n'
    else:
        top = f'Content-Type: multipart/alternative; boundary="{alternative}"\r\n'
    head = top + "MIME-Version: 1.0\r\n" + "".join(lines)
    return (head + "\r\n" + body).encode("ascii")


@functools.lru_cache(maxsize=4)
def _date(moment: datetime) -> str:
    """The Date header's text, made once per second (every message of that second shares it)."""
    return format_datetime(moment)


def _boundary() -> str:
    """'=' runs never occur in quoted-printable or base64 text, so this cannot clash."""
    return "=" * 15 + secrets.token_hex(16) + "=="


def _header(name: str, value: str) -> str:
    """One header line, CRLF-ended: as is when short and ASCII, folded at spaces when long
    (RFC 5322), RFC 2047-encoded when not ASCII (only the phrase before a trailing <…>, so
    List-Id and addresses keep their syntax). CR, LF and other controls never get in."""
    value = _CONTROLS.sub(" ", value)
    if not value.isascii():
        phrase, sep, angle = value.rpartition(" <")
        if sep and angle.endswith(">") and angle.isascii():
            return f"{name}: {_encoded(phrase)} <{angle}\r\n"
        return f"{name}: {_encoded(value)}\r\n"
    line = f"{name}: {value}"
    if len(line) <= 78:
        return line + "\r\n"
    folded, current = [], f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > 78 and current.strip() != f"{name}:":
            folded.append(current)
            current = " " + word  # a fold turns the separating space into CRLF + space
        else:
            current += " " + word
    return "\r\n".join([*folded, current]) + "\r\n"


def _encoded(text: str) -> str:
    """RFC 2047 encoded words of at most 75 characters each, on one line (unfolded)."""
    return Header(text, "utf-8").encode(linesep="\r\n").replace("\r\n", "")


def _address(name: str | None, address: str) -> str:
    """`Name <address>`; a non-ASCII name becomes encoded words (not one over-long word)."""
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    return f"{_encoded(name)} <{address}>"


def _qp(text: str) -> bytes:
    """Quoted-printable body (soft breaks at 76), CRLF line ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _base64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def _part(content_type: str, encoded: bytes) -> str:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded.decode("ascii")
    )


def _multipart(boundary: str, parts: list[str]) -> str:
    """The CRLF before each delimiter belongs to the delimiter (RFC 2046), not to the part."""
    return "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
