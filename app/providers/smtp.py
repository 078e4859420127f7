"""SMTP provider: one connection per sender, kept open between messages, reconnecting when
dropped. Lockstep smtplib (MAIL, RCPT, DATA, each answered before the next): a worker hides the
relay's round trips by sending on several connections at once (SEND_CONCURRENCY). The provider
signs DKIM and sets the VERP return path with what it was given at construction."""

from __future__ import annotations

import ipaddress
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.providers.base import Accepted, OutgoingMessage, Permanent, Result, Transient


@dataclass(frozen=True)
class SMTPSettings:
    """Where and how to connect."""

    host: str
    port: int
    security: str = "none"  # none | starttls | tls
    username: str | None = None
    password: str | None = None
    timeout: float = 15.0
    bounce_domain: str | None = None  # VERP domain; else the sender's own domain
    allow_private: bool = True  # False: refuse hosts that resolve to loopback/private networks
    check_after_idle: float = 10.0  # NOOP before reusing a connection idle this long


# The signer of an org's mail (has .sign(bytes) -> bytes), by org id; None: unsigned
DKIMSigners = Callable[[int | None], Any]
# The VERP local part for a message id (bounces+<id>-<tag>), so only we can name a message
VERPLocal = Callable[[int], str]


def _reply(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {text}".strip()


def _body(conn: smtplib.SMTP, raw: bytes) -> tuple[int, bytes]:
    """The message after DATA's 354, dot-stuffed and ended, and the server's final reply."""
    body = re.sub(rb"(?m)^\.", b"..", raw)
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    conn.send(body + b".\r\n")
    return conn.getreply()


class _Unconfirmed(Exception):
    """The connection failed after the message data was sent: it may have been accepted."""


class PrivateHost(OSError):
    """The SMTP host resolves to this machine or a private network (not allowed here)."""


def _check_public(host: str, port: int) -> None:
    """Refuse a host that resolves (now, at connect time) to a loopback or private address."""
    for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved:
            raise PrivateHost(f"{host} resolves to a private address, which is not allowed")


def _classify(ref: int, code: int, text: bytes | str, stage: str = "rcpt") -> Result:
    """4xx transient (421 = the server itself is in trouble), 5xx permanent; text kept. A refusal
    of our sender, our login or relaying is the provider setup's fault, not the recipient's."""
    reply = _reply(code, text)
    if code == 421:
        return Transient(ref, f"Server unavailable: {reply}", provider_trouble=True)
    setup = stage == "mail" or code in (530, 535) or "relay" in reply.lower()
    if code >= 500 and setup:
        return Transient(ref, f"The server refused to send for us: {reply}", provider_trouble=True)
    if 400 <= code < 500:
        return Transient(ref, f"Temporarily refused: {reply}")
    return Permanent(ref, f"Refused: {reply}")


class SMTPProvider:
    """Sends pre-serialized bytes over a connection kept open between messages."""

    name = "smtp"

    def __init__(
        self,
        settings: SMTPSettings,
        dkim: DKIMSigners | None = None,
        verp: VERPLocal | None = None,
    ) -> None:
        self.settings = settings
        self.dkim = dkim
        self.verp = verp
        self._conn: smtplib.SMTP | None = None
        self._used = 0.0

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if not s.allow_private:
            _check_public(s.host, s.port)
        if s.security == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
            )
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        conn.ehlo()
        if s.security == "starttls":
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
        if s.username:
            conn.login(s.username, s.password or "")
        return conn

    def _connection(self) -> smtplib.SMTP:
        """The open connection (checked with NOOP when it sat idle), or a new one."""
        if self._conn is not None:
            if time.monotonic() - self._used < self.settings.check_after_idle:
                return self._conn
            try:
                if self._conn.noop()[0] == 250:
                    return self._conn
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        self._conn = self._connect()
        return self._conn

    def return_path(self, msg: OutgoingMessage) -> str:
        """VERP: bounces+<our message id>-<tag>@<bounce domain>, so a bounce names its message."""
        domain = self.settings.bounce_domain or msg.mail_from.rpartition("@")[2]
        if not domain:
            return msg.mail_from
        local = self.verp(msg.ref) if self.verp is not None else f"bounces+{msg.ref}"
        return f"{local}@{domain}"

    def _signed(self, msg: OutgoingMessage) -> bytes:
        signer = self.dkim(msg.org_id) if self.dkim is not None else None
        return signer.sign(msg.raw) if signer is not None else msg.raw

    def check(self) -> str | None:
        """Connect, log in and say goodbye: None when that worked, else what went wrong."""
        try:
            conn = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            return self._trouble(exc)
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        return None

    def close(self) -> None:
        """Drop the connection (QUIT, quietly)."""
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._conn = None

    def _trouble(self, exc: BaseException) -> str:
        s = self.settings
        if isinstance(exc, socket.timeout | TimeoutError):
            return f"SMTP server {s.host}:{s.port} timed out"
        if isinstance(exc, PrivateHost):
            return f"SMTP server {s.host}: {exc}"
        if isinstance(exc, ConnectionRefusedError):
            return f"Could not connect to SMTP server {s.host}:{s.port}: connection refused"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            reply = _reply(exc.smtp_code, exc.smtp_error)
            return f"SMTP server {s.host}:{s.port} refused the login: {reply}"
        return f"SMTP server {s.host}:{s.port} failed: {exc.__class__.__name__}: {exc}"

    def send(self, msg: OutgoingMessage) -> Result:
        """MAIL, RCPT, DATA on this sender's connection; every failure becomes a result."""
        try:
            raw = self._signed(msg)
            path = self.return_path(msg)
        except Exception as exc:  # noqa: BLE001 - e.g. signing failed: this message only
            return Permanent(msg.ref, f"Could not send: {exc.__class__.__name__}: {exc}")
        try:
            result = self._transaction(msg, raw, path)
        except _Unconfirmed as exc:
            self.close()
            s = self.settings
            return Transient(
                msg.ref,
                f"SMTP server {s.host}:{s.port} dropped the connection after the message was "
                f"sent, before confirming it ({exc}); it may have been delivered",
                provider_trouble=True,
                unconfirmed=True,
            )
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return Transient(msg.ref, self._trouble(exc), provider_trouble=True)
        except (UnicodeError, ValueError) as exc:  # an address the server cannot take
            self._reset()
            return Permanent(msg.ref, f"Cannot be sent over SMTP: {exc}")
        self._used = time.monotonic()
        if isinstance(result, Transient) and result.provider_trouble:
            self.close()
        return result

    def _transaction(self, msg: OutgoingMessage, raw: bytes, path: str) -> Result:
        conn = self._connection()
        try:
            code, text = conn.mail(path)
        except smtplib.SMTPServerDisconnected:  # the server dropped an idle connection
            self.close()
            conn = self._conn = self._connect()
            code, text = conn.mail(path)
        if code != 250:
            self._reset()
            return _classify(msg.ref, code, text, stage="mail")
        code, text = conn.rcpt(msg.rcpt)
        if code not in (250, 251):
            self._reset()
            return _classify(msg.ref, code, text)
        code, text = conn.docmd("data")
        if code != 354:
            self._reset()
            return _classify(msg.ref, code, text)
        try:
            code, text = _body(conn, raw)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Unconfirmed(str(exc) or exc.__class__.__name__) from exc
        if code != 250:
            return _classify(msg.ref, code, text)
        return Accepted(msg.ref, provider_id=msg.message_id, response=_reply(code, text))

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()
