"""Deliverability settings: the org's providers (failover order, test connection, breakers) and
DKIM for mail Herald sends over SMTP itself."""

from flask import Blueprint

bp = Blueprint("deliverability", __name__)

from app.deliverability import routes  # noqa: E402,F401
