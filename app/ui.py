"""What every UI page's templates may use: the current org and role, and the time and audit
filters."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask, has_request_context

from app.audit import audit_phrase
from app.models import Role
from app.tenancy import current_org, current_role, user_memberships


def init_app(app: Flask) -> None:
    """Register the names and filters on the UI's own Jinja environment."""
    app.jinja_env.globals.update(
        current_org=current_org,
        current_role=current_role,
        user_memberships=user_memberships,
        Role=Role,
    )
    app.jinja_env.filters["org_time"] = org_time
    app.jinja_env.filters["audit_phrase"] = audit_phrase


def org_time(dt: datetime, zone: str | None = None) -> datetime:
    """A timestamp in `zone`, else the organization's time zone (UTC when there is none, as
    outside a request); a naive timestamp is taken as UTC."""
    name = zone
    if name is None and has_request_context():
        name = current_org.timezone if current_org else None
    try:
        tz = ZoneInfo(name or "UTC")
    except (LookupError, ValueError):
        tz = ZoneInfo("UTC")
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(tz)
