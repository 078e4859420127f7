"""Dead letters: messages that failed for good, to retry or set aside with a reason."""

from flask import Blueprint

bp = Blueprint("deadletters", __name__)

from app.deadletters import routes  # noqa: E402,F401
