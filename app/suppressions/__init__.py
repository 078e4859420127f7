"""The org's suppression list: search, add, remove, import and export."""

from flask import Blueprint

bp = Blueprint("suppressions", __name__)

from app.suppressions import routes  # noqa: E402,F401
