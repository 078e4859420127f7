"""Schedule: a campaign's interview slots as the recruiter sees and changes them."""

from flask import Blueprint

bp = Blueprint("schedule", __name__, url_prefix="/campaigns")

from app.schedule import routes  # noqa: E402,F401
