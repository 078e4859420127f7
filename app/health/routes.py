"""/healthz: status only for everyone ({"status": "ok"}, or 503 when PostgreSQL or Redis is
down), cheap enough for a load balancer to ask every second. An operator (health/access.py) also
gets queue depths, live workers, the sweeper's last run and a summary of the breakers."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import csrf, db, redis
from app.health import bp
from app.health.access import operator
from app.jobs.sweep import LAST_RUN_KEY
from app.models import ProviderAccount
from app.providers.routing import DEFAULT_KEY, breaker
from app.queues import ALL, queue
from app.tenancy import ALL_ORGS


def _breakers() -> dict[str, int | str]:
    """How many providers' breakers are closed, open or half-open, and the default's state
    (reported, never a reason for 503; which org owns which provider is not shown). One count
    from PostgreSQL and the tripped breakers from Redis, whatever the number of providers."""
    tripped = breaker().tripped()
    default = tripped.pop(DEFAULT_KEY, "closed")
    accounts = db.session.scalar(
        select(func.count()).select_from(ProviderAccount).execution_options(**ALL_ORGS)
    )
    states = list(tripped.values())
    summary: dict[str, int | str] = {
        "default": default,
        "open": states.count("open"),
        "half-open": states.count("half-open"),
    }
    summary["closed"] = max(0, accounts - len(states))
    return summary


def _details(body: dict) -> None:
    """The operator's figures, added to body (only while both stores answered)."""
    body["queues"] = {name: queue(name).count for name in ALL}
    body["workers"] = Worker.count(connection=redis.client)
    last = redis.client.get(LAST_RUN_KEY)
    body["sweeper_last_run"] = last.decode() if last else None
    body["breakers"] = _breakers()


@bp.get("/healthz")
@csrf.exempt
def healthz() -> ResponseReturnValue:
    """JSON status; 503 only when PostgreSQL or Redis is down."""
    stores = {"database": "ok", "redis": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        stores["database"] = "down"
    try:
        redis.client.ping()
    except RedisError:
        stores["redis"] = "down"
    healthy = "down" not in stores.values()
    body: dict = {"status": "ok" if healthy else "down"}
    if operator():
        body.update(stores)
        if healthy:
            try:
                _details(body)
            except (RedisError, SQLAlchemyError):
                db.session.rollback()  # a store that fails midway: the status stands
    return jsonify(body), 200 if healthy else 503
