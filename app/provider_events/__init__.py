"""What providers and receiving servers tell us about sent mail, applied once to its message:
Mailgun webhooks (one random URL per organization, signatures verified before anything) and
the inbound SMTP server (DSNs at the VERP return path, unsubscribe requests by mail; it accepts
only our own addresses and never relays)."""

from flask import Blueprint

bp = Blueprint("provider_events", __name__)

from app.provider_events import routes  # noqa: E402,F401
