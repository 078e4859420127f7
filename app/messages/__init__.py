"""Messages: the Overview (recent emails, test email), one message's timeline, Find a message."""

from flask import Blueprint

bp = Blueprint("messages", __name__)

from app.messages import routes  # noqa: E402,F401
