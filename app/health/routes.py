"""/healthz: database and Redis reachable, queue depths, live workers, last sweeper run."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import csrf, db, redis
from app.health import bp
from app.jobs.queues import ALL, queue
from app.jobs.sweep import LAST_RUN_KEY


def _breakers() -> dict[str, int | str]:
    """How many providers' breakers are closed, open or half-open, and the default's state
    (reported, never a reason for 503; which org owns which provider is not public)."""
    from sqlalchemy import select

    from app.mail.delivery import DEFAULT_KEY, breaker
    from app.models import ProviderAccount
    from app.tenancy import ALL_ORGS

    b = breaker()
    states = {DEFAULT_KEY: b.state(DEFAULT_KEY)}
    try:
        keys = db.session.scalars(select(ProviderAccount).execution_options(**ALL_ORGS)).all()
    except SQLAlchemyError:
        db.session.rollback()
        keys = []
    summary: dict[str, int | str] = {
        "default": states[DEFAULT_KEY],
        "closed": 0,
        "open": 0,
        "half-open": 0,
    }
    for account in keys:
        summary[b.state(account.key)] += 1
    return summary


@bp.get("/healthz")
@csrf.exempt
def healthz() -> ResponseReturnValue:
    """JSON status; 503 only when PostgreSQL or Redis is down."""
    body: dict = {"database": "ok", "redis": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        body["database"] = "down"
    try:
        redis.client.ping()
        body["queues"] = {name: queue(name).count for name in ALL}
        body["workers"] = Worker.count(connection=redis.client)
        last = redis.client.get(LAST_RUN_KEY)
        body["sweeper_last_run"] = last.decode() if last else None
        body["breakers"] = _breakers()
    except RedisError:
        body["redis"] = "down"
    healthy = body["database"] == "ok" and body["redis"] == "ok"
    body["status"] = "ok" if healthy else "down"
    return jsonify(body), 200 if healthy else 503
