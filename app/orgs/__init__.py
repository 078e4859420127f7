"""Organizations: create another, switch between them, settings."""

from flask import Blueprint

bp = Blueprint("orgs", __name__)

from app.orgs import routes  # noqa: E402,F401
