"""Provider webhooks: one random URL per organization, signatures verified before anything."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)

from app.webhooks import routes  # noqa: E402,F401
