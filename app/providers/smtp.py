"""SMTP provider: one persistent connection per worker process, reconnecting when dropped."""

from __future__ import annotations

import ipaddress
import re
import select
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from app.mail.verp import local_part
from app.providers.base import (
    Accepted,
    OutgoingMessage,
    Permanent,
    ProviderCache,
    Result,
    Transient,
    Withheld,
    ask,
)


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
    verp_key: bytes | None = None  # signs the VERP return path (bounces+<id>-<tag>@…)
    check_after_idle: float = 10.0  # NOOP before reusing a connection idle this long


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:@\"]+@[^\s<>()\[\]\\,;:@\"]+\Z")


def _quoted(address: str) -> str:
    """<address> for MAIL and RCPT; smtplib's quoteaddr (a full address parse) when not plain."""
    return f"<{address}>" if _PLAIN_ADDRESS.match(address) else smtplib.quoteaddr(address)


def _reply(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {text}".strip()


def _pipelines(conn: smtplib.SMTP) -> bool:
    """The server takes commands in groups (RFC 2920 PIPELINING, which production relays offer)."""
    return bool(conn.does_esmtp) and conn.has_extn("pipelining")


def _envelope(conn: smtplib.SMTP, path: str, rcpt: str) -> bytes:
    """MAIL, RCPT and DATA as one group (RFC 2920: DATA ends a group), checked as putcmd checks."""
    commands = (f"MAIL FROM:{_quoted(path)}", f"RCPT TO:{_quoted(rcpt)}", "DATA")
    if any("\r" in c or "\n" in c for c in commands):
        raise ValueError("command and arguments contain prohibited newline characters")
    return "".join(c + "\r\n" for c in commands).encode(conn.command_encoding)


class _Unconfirmed(Exception):
    """The connection failed after the message data was sent: it may have been accepted."""


class _BeforeEnd(Exception):
    """The connection failed (or the server spoke up) after the body went and before its end:
    nothing was delivered. `error` is what happened: an OSError, or the server's reply."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Withdrawn(Exception):
    """The message's release said no after its body went: it must not be ended."""


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


@dataclass
class _Ahead:
    """Commands sent ahead of a message (SMTPProvider.announce, advance), replies read early."""

    path: str  # MAIL FROM sent with this return path
    mail: tuple[int, bytes] | None = None
    rcpt: str | None = None  # RCPT TO sent for this address
    rcpt_reply: tuple[int, bytes] | None = None
    data: bool = False  # DATA sent, its reply unread


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _data(
    conn: smtplib.SMTP,
    raw: bytes,
    reply: tuple[int, bytes] | None,
    then: bytes = b"",
    release: Callable[[], bool] | None = None,
) -> tuple[int, bytes]:
    """smtplib's data(), whose DATA may have gone ahead (its reply is then given); `then` (the
    next message's commands, on a server that pipelines) goes in the same write as the end of
    the body. With a `release`, the body goes first and its end only once release() says so:
    the server takes in the body while the caller waits, and a message withdrawn before its
    end is never delivered (RFC 5321 4.1.1.4: only the final dot completes it)."""
    if reply is None:
        conn.putcmd("data")
        reply = conn.getreply()
    if reply[0] != 354:
        raise smtplib.SMTPDataError(*reply)
    body = _LEADING_DOT.sub(b"..", raw) if raw[:1] == b"." or b"\n." in raw else raw
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    staged = release is not None and not _answered(release)
    if staged:
        try:  # the body now, its end once answered
            conn.sock.sendall(body)
        except OSError as exc:  # before the end of the message: surely not delivered
            raise _BeforeEnd(exc) from exc
        body = b""
    if not ask(release):
        raise _Withdrawn
    if staged:
        _still_waiting(conn)
    conn.send(body + b".\r\n" + then)
    return conn.getreply()


def _still_waiting(conn: smtplib.SMTP) -> None:
    """A server in the middle of a message says nothing until its end: if it spoke (a 421, a
    timeout notice) or hung up while the caller was asked, the end would go to a session that
    is gone, and nothing was delivered: that is provider trouble, not an unconfirmed send."""
    try:
        if not select.select([conn.sock], [], [], 0)[0]:
            return
        code, text = conn.getreply()
    except (smtplib.SMTPException, OSError) as exc:
        raise _BeforeEnd(exc) from exc
    raise _BeforeEnd(smtplib.SMTPResponseException(code, text))


def _answered(release: Callable[[], bool]) -> bool:
    """The release can answer without waiting (it says so with a ready() of its own): the
    body and its end then go in one write."""
    ready = getattr(release, "ready", None)
    try:
        return bool(ready is not None and ready())
    except Exception:  # noqa: BLE001 - asking it will tell
        return False


def _command(conn: smtplib.SMTP, verb: str, word: str, address: str) -> tuple[int, bytes]:
    """MAIL FROM or RCPT TO (smtplib's mail() and rcpt() without their address parse)."""
    conn.putcmd(verb, f"{word}:{_quoted(address)}")
    return conn.getreply()


class SMTPProvider:
    """Sends pre-serialized bytes over a connection kept open across batches."""

    name = "smtp"
    _shared = ProviderCache()

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings
        self._conn: smtplib.SMTP | None = None
        self._used = 0.0
        self._ahead: _Ahead | None = None  # commands sent ahead of the next message
        self._next: tuple[int, str, str] | None = None  # (ref, sender, rcpt): see expect_next
        self._paths: dict[tuple[int, str], str] = {}

    @classmethod
    def shared(cls, settings: SMTPSettings) -> SMTPProvider:
        """The process-wide provider for these settings (so its connection is reused)."""
        return cls._shared.get(settings, lambda: cls(settings))  # type: ignore[return-value]

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
        # a message's end goes in its own small write after the body: without this, Nagle's
        # algorithm holds it until the body is acknowledged (a delayed ACK: up to 40 ms)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
                return self._conn  # (with the MAIL announced on it, if any)
            self._settle()
        if self._conn is not None:
            try:
                if self._conn.noop()[0] == 250:
                    return self._conn
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        self._conn = self._connect()
        return self._conn

    def return_path(self, msg: OutgoingMessage) -> str:
        """VERP: bounces+<our message id>-<tag>@<bounce domain>, so a bounce names its message
        (and only we can name one)."""
        return self._return_path(msg.ref, msg.mail_from)

    def _return_path(self, ref: int, mail_from: str) -> str:
        path = self._paths.get((ref, mail_from))
        if path is None:  # asked up to three times per message: ahead, announce, send
            if len(self._paths) >= 4:
                self._paths.clear()
            path = self._paths[ref, mail_from] = self._verp(ref, mail_from)
        return path

    def _verp(self, ref: int, mail_from: str) -> str:
        domain = self.settings.bounce_domain or mail_from.rpartition("@")[2]
        if not domain:
            return mail_from
        local = (
            local_part(self.settings.verp_key, ref) if self.settings.verp_key else f"bounces+{ref}"
        )
        return f"{local}@{domain}"

    def announce(self, ref: int, mail_from: str, rcpt: str | None = None) -> None:
        """Send MAIL FROM for the message about to be built and read the reply when it is sent:
        the server answers while the worker builds it, one round trip fewer per message. To a
        server that pipelines, RCPT and DATA go in the same write. Nothing is delivered before
        the body; a message that never comes is reset or hung up on (_settle). Only on an open
        connection used moments ago: a new or idle one is set up when the message is sent."""
        path = self._return_path(ref, mail_from)
        ahead = self._ahead
        if ahead is not None and ahead.path == path and ahead.rcpt in (None, rcpt):
            return  # on its way already (it went with the last message's body)
        self._settle()
        conn = self._conn
        if conn is None or time.monotonic() - self._used >= self.settings.check_after_idle:
            return
        try:
            if rcpt is not None and _pipelines(conn):
                conn.send(_envelope(conn, path, rcpt))
                self._ahead = _Ahead(path, rcpt=rcpt, data=True)
                return
            conn.putcmd("mail", f"FROM:{_quoted(path)}")
        except ValueError:  # an address no command can carry: its own send says so
            return
        except (smtplib.SMTPException, OSError):
            self.close()
            return
        self._ahead = _Ahead(path)

    def expect_next(self, ref: int, mail_from: str, rcpt: str) -> None:
        """The message that comes after the next one sent, if the caller knows it will follow.
        To a server that pipelines, its MAIL, RCPT and DATA go in the same write as the body of
        the message before (RFC 2920 lets a group start with message content): one write and one
        read per message. Used by the next send only; a message that then does not come is hung
        up on (_settle), which delivers nothing."""
        self._next = (ref, mail_from, rcpt)

    def advance(self, rcpt: str) -> None:
        """One more command ahead, when the last one is answered already (a peek, no wait):
        RCPT TO once MAIL is answered, DATA once RCPT is. The server answers each while the
        worker goes on building the message; nothing is delivered before its body ends."""
        ahead, conn = self._ahead, self._conn
        if ahead is None or conn is None or ahead.data:
            return
        try:
            if not select.select([conn.sock], [], [], 0)[0]:
                return  # not answered yet: read when the message is sent
            if ahead.mail is None:
                ahead.mail = conn.getreply()
                if ahead.mail[0] == 250:
                    conn.putcmd("rcpt", f"TO:{_quoted(rcpt)}")
                    ahead.rcpt = rcpt
            elif ahead.rcpt == rcpt and ahead.rcpt_reply is None:
                ahead.rcpt_reply = conn.getreply()
                if ahead.rcpt_reply[0] in (250, 251):
                    conn.putcmd("data")
                    ahead.data = True
        except (smtplib.SMTPException, OSError, ValueError):
            self.close()

    def _settle(self) -> None:
        """Commands sent ahead for a message that did not come: read their replies, reset (or
        hang up, if the server already waits for the message's body: that is never delivered)."""
        ahead, conn, self._ahead = self._ahead, self._conn, None
        if ahead is None or conn is None:
            return
        try:
            if ahead.mail is None:
                conn.getreply()
            if ahead.rcpt is not None and ahead.rcpt_reply is None:
                conn.getreply()
            if ahead.data and conn.getreply()[0] == 354:
                conn.close()  # no QUIT: it would be read as the body
                self._conn = None
                return
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def _group_after(
        self, conn: smtplib.SMTP, following: tuple[int, str, str] | None
    ) -> tuple[bytes, _Ahead | None]:
        """The next message's MAIL, RCPT and DATA to send with this body, on a server that
        pipelines (nothing otherwise, or when its address cannot go in a command)."""
        if following is None or not _pipelines(conn):
            return b"", None
        ref, mail_from, rcpt = following
        path = self._return_path(ref, mail_from)
        try:
            return _envelope(conn, path, rcpt), _Ahead(path, rcpt=rcpt, data=True)
        except (UnicodeError, ValueError):  # its own send will say so
            return b"", None

    def _abandon(self, conn: smtplib.SMTP, data_reply: tuple[int, bytes] | None) -> None:
        """End a refused transaction: RSET, or hang up if DATA (pipelined) was answered 354
        anyway, since the server then reads whatever comes next as the message. A server that
        closed (421) is let go: the refusal's own words are the result."""
        if data_reply is not None and data_reply[0] == 354:
            conn.close()  # no QUIT: it would be read as the body
            if self._conn is conn:
                self._conn = None
            return
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

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
        """Drop the connection (quietly): QUIT, or a plain hang-up when DATA went ahead (the
        server would read QUIT as the start of a body and never answer it)."""
        ahead, self._ahead = self._ahead, None
        if self._conn is not None:
            try:
                if ahead is not None and ahead.data:
                    self._conn.close()
                else:
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

    def _send_one(
        self, conn: smtplib.SMTP, msg: OutgoingMessage, following: tuple | None = None
    ) -> Result:
        raw = msg.signer.sign(msg.raw) if msg.signer is not None else msg.raw  # before any reply
        path = self.return_path(msg)
        ahead = self._ahead
        if ahead is not None and (ahead.path != path or ahead.rcpt not in (None, msg.rcpt)):
            self._settle()
            ahead = None
            conn = self._conn or self._connect()  # (settling may have had to hang up)
            self._conn = conn
        self._ahead = None
        rcpt_reply = data_reply = None
        try:
            if ahead is None:
                code, text = _command(conn, "mail", "FROM", path)
            else:
                code, text = ahead.mail or conn.getreply()
        except smtplib.SMTPServerDisconnected:  # the server dropped an idle connection
            self.close()
            conn = self._conn = self._connect()
            code, text = _command(conn, "mail", "FROM", path)
            ahead = None
        if ahead is not None:  # the rest of what went ahead
            try:
                rcpt_reply = ahead.rcpt_reply
                if ahead.rcpt is not None and rcpt_reply is None:
                    rcpt_reply = conn.getreply()
                if ahead.data:
                    data_reply = conn.getreply()
            except smtplib.SMTPServerDisconnected:
                # it answered part of the group and hung up (a 421 does): that answer counts
                refused = (code, text) if code != 250 else rcpt_reply
                if refused is None or refused[0] in (250, 251):
                    raise
                self.close()
                stage = "mail" if code != 250 else "rcpt"
                return _classify(msg.ref, refused[0], refused[1], stage=stage)
        if code != 250:
            self._abandon(conn, data_reply)
            return _classify(msg.ref, code, text, stage="mail")
        code, text = rcpt_reply or _command(conn, "rcpt", "TO", msg.rcpt)
        if code not in (250, 251):
            self._abandon(conn, data_reply)
            return _classify(msg.ref, code, text)
        then, ahead = self._group_after(conn, following)
        try:
            code, text = _data(conn, raw, data_reply, then, msg.release)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
            conn.rset()
            return _classify(msg.ref, exc.smtp_code, exc.smtp_error)
        except _Withdrawn:  # the server holds part of a body that must not end: hang up
            conn.close()  # (no QUIT: it would be read as the body)
            self._conn = None
            return Withheld(msg.ref)
        except _BeforeEnd as exc:  # provider trouble, and surely not delivered
            self.close()
            error = exc.error
            if isinstance(error, smtplib.SMTPResponseException):  # with its own words
                reply = _reply(error.smtp_code, error.smtp_error)
                return Transient(
                    msg.ref,
                    f"The server ended the session in the middle of the message: {reply}",
                    provider_trouble=True,
                )
            raise error from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:  # at the end or awaiting the 250
            raise _Unconfirmed(str(exc) or exc.__class__.__name__) from exc
        self._ahead = ahead  # the next message's commands went with the body
        if code != 250:
            return _classify(msg.ref, code, text)
        return Accepted(msg.ref, provider_id=msg.message_id, response=_reply(code, text))

    def send_batch(self, messages: Iterable[OutgoingMessage]) -> Iterator[Result]:
        """Send one by one on the shared connection, taking messages lazily.

        When the server itself fails (refused, dropped, timed out, 421) the current message gets a
        provider-trouble result and no further message is taken from `messages`.
        """
        for msg in messages:
            following, self._next = self._next, None  # for this message only, sent or not
            try:
                conn = self._connection()
                result = self._send_one(conn, msg, following)
            except _Unconfirmed as exc:
                self.close()
                s = self.settings
                yield Transient(
                    msg.ref,
                    f"SMTP server {s.host}:{s.port} dropped the connection after the message was "
                    f"sent, before confirming it ({exc}); it may have been delivered",
                    provider_trouble=True,
                    unconfirmed=True,
                )
                return
            except (smtplib.SMTPException, OSError) as exc:
                self.close()
                yield Transient(msg.ref, self._trouble(exc), provider_trouble=True)
                return
            except (UnicodeError, ValueError) as exc:  # an address the server cannot take
                self._reset_quietly()
                yield Permanent(msg.ref, f"Cannot be sent over SMTP: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. signing failed: this message only
                self._reset_quietly()
                yield Permanent(msg.ref, f"Could not send: {exc.__class__.__name__}: {exc}")
                continue
            self._used = time.monotonic()
            yield result
            if isinstance(result, Transient) and result.provider_trouble:
                self.close()
                return

    def _reset_quietly(self) -> None:
        self._settle()
        try:
            if self._conn is not None:
                self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()
