"""Build each message once as RFC 5322 bytes with CRLF line ends; every provider sends them."""

from __future__ import annotations

import uuid
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr

from app.mail.render import Rendered

_CRLF = compat32.clone(linesep="\r\n")
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def message_domain(org: object | None) -> str:
    """The domain of Message-IDs: the org's sending domain, else the deployment's sender's."""
    from flask import current_app

    domain = getattr(org, "sending_domain", None)
    if domain:
        return domain
    return parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "herald.localhost"


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
    multipart/mixed with invite.ics attached when there is a calendar; serialized with CRLF."""
    body = MIMEMultipart("alternative")
    msg = MIMEMultipart("mixed") if calendar else body
    msg["From"] = mail_from
    msg["To"] = formataddr((to_name, to_email)) if to_name else to_email
    subject = rendered.subject
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    body.attach(MIMEText(rendered.text, "plain", _UTF8_QP))
    body.attach(MIMEText(rendered.html, "html", _UTF8_QP))
    if calendar:
        method = "CANCEL" if b"METHOD:CANCEL" in calendar else "REQUEST"
        inline = MIMEText(calendar.decode(), "calendar", "utf-8")
        inline.set_param("method", method)
        body.attach(inline)
        msg.attach(body)
        attached = MIMEApplication(calendar, "ics", Name="invite.ics")
        attached.add_header("Content-Disposition", "attachment", filename="invite.ics")
        msg.attach(attached)
    return msg.as_bytes(policy=_CRLF)
