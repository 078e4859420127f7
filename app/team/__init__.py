"""Teammates: members and roles, invites, the audit log."""

from flask import Blueprint

bp = Blueprint("team", __name__, url_prefix="/team")

from app.team import routes  # noqa: E402,F401
