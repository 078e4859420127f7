"""Jobs and candidates: CRUD, search, tags, CSV import with live progress."""

from flask import Blueprint

bp = Blueprint("candidates", __name__)

from app.candidates import import_routes, routes  # noqa: E402,F401
