"""Settings → Providers and DKIM: the org's providers (failover order, test connection,
breakers) and DKIM for mail Herald sends over SMTP itself."""

from flask import Blueprint

bp = Blueprint("settings", __name__)

from app.settings import routes  # noqa: E402,F401
