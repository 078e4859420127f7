"""Shared setup for benchmarks: a throwaway database on the configured server, migrated."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.config import database_url  # noqa: E402


def with_database(run: Callable[[], None]) -> None:
    """Create a database, point DATABASE_URL at it, run, drop it."""
    base = database_url(os.environ.get("DATABASE_URL"))
    name = f"herald_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = (
        make_url(base).set(database=name).render_as_string(hide_password=False)
    )
    os.environ.setdefault("HERALD_ENV", "test")
    os.environ.setdefault("SECRET_KEY", "bench")
    try:
        run()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_with_org():  # noqa: ANN201
    """A migrated app and one organization with an admin (ids)."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.models import Membership, Organization, Role, User

    app = create_app()
    with app.app_context():
        upgrade()
        org = Organization(name="Bench Co", timezone="Europe/Paris", postal_address="1 Street")
        user = User(email="bench@example.com", name="Bench", password_hash="x")
        db.session.add_all([org, user])
        db.session.flush()
        db.session.add(Membership(org_id=org.id, user_id=user.id, role=Role.ADMIN))
        db.session.commit()
        return app, org.id, user.id


def copy_candidates(org_id: int, count: int, tag: str = "bench") -> None:
    """COPY `count` candidates c<n>@example.com tagged `tag` into the org (inside an app context;
    the caller commits)."""
    from app.extensions import db

    raw = db.session.connection().connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY candidates (org_id, email, first_name, last_name, tags, custom, created_at, "
            "updated_at) FROM STDIN"
        ) as copy,
    ):
        for n in range(count):
            row = (org_id, f"c{n}@example.com", f"First{n}", f"Last{n}", [tag], "{}")
            copy.write_row((*row, "now", "now"))


def draft_campaign(org_id: int, user_id: int, recipients: int, **org_settings: object):  # noqa: ANN201
    """Inside an app context: the default templates, a job, `recipients` candidates (COPY) and
    an invitation campaign to them, created but not launched. Returns (org, user, campaign)."""
    from app.campaigns import services
    from app.extensions import db
    from app.models import Job, Organization, TemplateKind, User
    from app.templates_editor.services import create_defaults

    org = db.session.get(Organization, org_id)
    for name, value in org_settings.items():
        setattr(org, name, value)
    user = db.session.get(User, user_id)
    template = next(t for t in create_defaults(org, user) if t.kind == TemplateKind.INVITATION)
    job = Job(org_id=org.id, title="Backend Engineer", department="Platform")
    db.session.add(job)
    db.session.commit()
    copy_candidates(org_id, recipients)
    db.session.commit()
    campaign = services.create(
        org,
        user,
        name="Bench",
        job=job,
        template=template,
        audience={"tag": "bench"},
        respond_by=None,
        slot_starts_at=None,
        location=None,
    )
    db.session.commit()
    return org, user, campaign
