"""A campaign's results: every recipient and where they stand, filters, search, CSV export,
attended / no-show after the interview and the follow-up that goes to those who attended."""

from flask import Blueprint

bp = Blueprint("results", __name__, url_prefix="/campaigns")

from app.results import routes  # noqa: E402,F401
