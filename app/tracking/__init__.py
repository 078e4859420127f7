"""Open pixel and click redirects (public, signed), machine detection, and applying provider
events (delivered, bounced, complained, unsubscribed) to messages."""

from flask import Blueprint

bp = Blueprint("tracking", __name__)

from app.tracking import routes  # noqa: E402,F401
