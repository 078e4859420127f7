"""Herald: branded interview invitations for recruiting teams. create_app() wires everything."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from app.config import Config


def create_app(config: Config | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints, security headers, error pages."""
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(config or Config())

    from app import errors, logs, security
    from app.mail import bounds

    app.url_map.converters["int"] = security.BoundedInt  # before any route is added
    from app.extensions import csrf, db, htmx, login_manager, migrate, redis

    logs.configure_logging(app.config["LOG_LEVEL"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    redis.init_app(app)

    from app import models, tenancy  # noqa: F401  (models; the tenant safety net)
    from app.auth import bp as auth_bp
    from app.campaigns import bp as campaigns_bp
    from app.candidates import bp as candidates_bp
    from app.cli import register_cli
    from app.dashboard import bp as dashboard_bp
    from app.deadletters import bp as deadletters_bp
    from app.devmail import bp as devmail_bp
    from app.health import bp as health_bp
    from app.messages import bp as messages_bp
    from app.orgs import bp as orgs_bp
    from app.provider_events import bp as provider_events_bp
    from app.public import bp as public_bp
    from app.settings import bp as settings_bp
    from app.suppressions import bp as suppressions_bp
    from app.team import bp as team_bp
    from app.templates_editor import bp as templates_bp
    from app.tracking import bp as tracking_bp

    blueprints = (
        auth_bp,
        messages_bp,
        orgs_bp,
        team_bp,
        templates_bp,
        candidates_bp,
        campaigns_bp,
        dashboard_bp,
        deadletters_bp,
        suppressions_bp,
        settings_bp,
        public_bp,
        tracking_bp,
        provider_events_bp,
        devmail_bp,
        health_bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    security.init_app(app)
    tenancy.init_app(app)
    bounds.configure(app.config["TEMPLATE_RENDER_SECONDS"], app.config["TEMPLATE_RENDER_MEMORY_MB"])
    _template_globals(app)
    errors.init_app(app)
    register_cli(app)
    return app


def _template_globals(app: Flask) -> None:
    """Names every UI template may use."""
    from app.models import Role
    from app.tenancy import current_org, current_role, user_memberships

    app.jinja_env.globals.update(
        current_org=current_org,
        current_role=current_role,
        user_memberships=user_memberships,
        Role=Role,
    )
    app.jinja_env.filters["org_time"] = org_time
    from app.audit import audit_phrase

    app.jinja_env.filters["audit_phrase"] = audit_phrase


def org_time(dt, zone: str | None = None):  # noqa: ANN001, ANN201
    """A timestamp in `zone`, else the organization's time zone (UTC when there is none, as
    outside a request); a naive timestamp is taken as UTC."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from flask import has_request_context

    from app.tenancy import current_org

    name = zone
    if name is None and has_request_context():
        name = current_org.timezone if current_org else None
    try:
        tz = ZoneInfo(name or "UTC")
    except (LookupError, ValueError):
        tz = ZoneInfo("UTC")
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(tz)
