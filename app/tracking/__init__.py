"""Open pixel and click redirects (public, signed), machine detection, the hits' spool and
storing, rollups and retention."""

from flask import Blueprint

bp = Blueprint("tracking", __name__)

from app.tracking import routes  # noqa: E402,F401
