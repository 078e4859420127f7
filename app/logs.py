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


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message through redact()."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
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
