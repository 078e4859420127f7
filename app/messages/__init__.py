"""The signed-in home: overview, test email, message list and detail."""

from flask import Blueprint

bp = Blueprint("messages", __name__)

from app.messages import routes  # noqa: E402,F401
