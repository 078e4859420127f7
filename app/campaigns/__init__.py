"""Campaigns: bulk interview invitations — audience, review, send or schedule, progress."""

from flask import Blueprint

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

from app.campaigns import routes  # noqa: E402,F401
