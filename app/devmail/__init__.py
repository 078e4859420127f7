"""Development mailbox: a local SMTP sink and pages that show what it received."""

from flask import Blueprint

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")

from app.devmail import routes  # noqa: E402,F401
