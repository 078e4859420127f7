"""The template editor: branded templates with live preview, validation and versions."""

from flask import Blueprint

bp = Blueprint("templates_editor", __name__, url_prefix="/templates")

from app.templates_editor import routes  # noqa: E402,F401
