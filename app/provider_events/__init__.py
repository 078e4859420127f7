"""Provider webhooks: one random URL per organization, signatures verified before anything."""

from flask import Blueprint

bp = Blueprint("provider_events", __name__)

from app.provider_events import routes  # noqa: E402,F401
