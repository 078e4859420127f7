"""Sign-up, log in / out, password reset, email verification, joining through an invite."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import account, routes  # noqa: E402,F401
