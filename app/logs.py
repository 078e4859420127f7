"""Logging with personal data and secrets redacted: no email address or key reaches a log line."""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(\.[\w-]+)+")
SECRET = re.compile(r"(?i)(password|secret|api[_-]?key|token)(\s*[=:]\s*)(\S+)")
# Signed or random link tokens in request paths (access logs): /join/<token>, /reset/<token>, ...
LINK_TOKEN = re.compile(r"/(join|reset|verify|i|u|c|o)/[A-Za-z0-9_\-.=]{16,}")


def redact(text: str) -> str:
    """Replace email addresses, link tokens and `secret=value` pairs in a log text."""
    text = EMAIL.sub("<email>", text)
    text = LINK_TOKEN.sub(r"/\1/<token>", text)
    return SECRET.sub(r"\1\2<redacted>", text)


SDK_MAX = 300  # characters kept of a provider SDK's log line


def _plain(value: object) -> object:
    """An SDK log argument kept only when it is a short one-line text (a method, a URL);
    anything else (an exception, a dict, bytes: they carry the request) by its type."""
    if isinstance(value, str) and len(value) <= 200 and "\n" not in value:
        return value
    if isinstance(value, int | float):
        return value
    return f"<{type(value).__name__}>"


def _short_sdk_line(record: logging.LogRecord, message: str) -> str:
    """Mailgun's SDK logs a failed request whole (its exception's dict, the multipart body:
    the email, links and all) and calls a network error CRITICAL. Keep what happened and
    where, as a warning; our provider reports the failure on the message itself."""
    if record.levelno > logging.WARNING:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    head = message
    if record.args and isinstance(record.msg, str):
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        try:
            head = record.msg % tuple(_plain(a) for a in args)
        except (TypeError, ValueError):
            head = record.msg
    head = head.split(": {", 1)[0].split(": b'", 1)[0].split("\n", 1)[0]
    return head if len(head) <= SDK_MAX else head[:SDK_MAX] + "…"


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message through redact() (a provider SDK's, shortened)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "mailgun" or record.name.startswith("mailgun."):
            message = _short_sdk_line(record, message)
            record.exc_info, record.exc_text = None, None  # (its traceback carries it too)
        cleaned = redact(message)
        if cleaned != record.getMessage() or record.args:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted line, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str) -> None:
    """One readable format; the redacting filter sits on every root handler."""
    root = logging.getLogger()
    if not any(getattr(h, "_herald", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._herald = True  # type: ignore[attr-defined]
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s")
        )
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    root.setLevel(level)
    if logging.getLevelName(level) != logging.DEBUG:
        # RQ's per-job lines and the sink's per-connection lines drown what matters in development.
        for noisy in ("rq.worker", "rq.scheduler", "rq_scheduler.scheduler", "mail.log"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
