"""/healthz and /metrics: the public sees the status only; queue depths, workers and breakers go
to an operator (the metrics token, or loopback resolved through TRUSTED_PROXY_COUNT), and
cost the same however many providers the organizations have."""

from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import event

from app import create_app
from app.config import Config
from app.extensions import db
from tests.conftest import FreshContextClient, _free_port

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}
DETAILS = {"database", "redis", "queues", "workers", "sweeper_last_run", "breakers"}


def test_the_public_sees_only_the_status(app):
    client = app.test_client()
    health = client.get("/healthz", environ_base=REMOTE)
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    assert client.get("/metrics", environ_base=REMOTE).status_code == 404
    local = client.get("/healthz").get_json()  # the test client is 127.0.0.1
    assert DETAILS <= set(local) and local["status"] == "ok"

    real = app.extensions["redis"]
    app.extensions["redis"] = Redis(host="127.0.0.1", port=_free_port(), socket_connect_timeout=1)
    try:
        down = client.get("/healthz", environ_base=REMOTE)
    finally:
        app.extensions["redis"] = real
    assert down.status_code == 503 and down.get_json() == {"status": "down"}


def test_the_metrics_token_shows_the_details_from_anywhere(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret")
    client = app.test_client()
    bearer = {"Authorization": "Bearer s3cret"}
    health = client.get("/healthz", environ_base=REMOTE, headers=bearer).get_json()
    assert DETAILS <= set(health)
    assert client.get("/metrics", environ_base=REMOTE, headers=bearer).status_code == 200
    wrong = {"Authorization": "Bearer guess"}
    assert client.get("/healthz", environ_base=REMOTE, headers=wrong).get_json() == {"status": "ok"}
    assert client.get("/metrics", environ_base=REMOTE, headers=wrong).status_code == 404


def test_a_forged_forwarded_for_is_not_loopback_without_trusted_proxies(app):
    assert app.config["TRUSTED_PROXY_COUNT"] == 0
    client = app.test_client()
    forged = {"X-Forwarded-For": "127.0.0.1"}
    assert client.get("/healthz", environ_base=REMOTE, headers=forged).get_json() == {
        "status": "ok"
    }
    assert client.get("/metrics", environ_base=REMOTE, headers=forged).status_code == 404


@pytest.fixture
def behind_a_proxy(app):
    """Herald behind one reverse proxy on this machine (every request reaches it from 127.0.0.1)."""
    proxied = create_app(Config(TRUSTED_PROXY_COUNT=1))
    proxied.test_client_class = FreshContextClient
    return proxied.test_client()


def test_behind_a_proxy_the_forwarded_client_decides(behind_a_proxy):
    via_proxy = {"REMOTE_ADDR": "127.0.0.1"}
    outside = {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}  # the proxy appended the real client
    health = behind_a_proxy.get("/healthz", environ_base=via_proxy, headers=outside)
    assert health.get_json() == {"status": "ok"}
    metrics = behind_a_proxy.get("/metrics", environ_base=via_proxy, headers=outside)
    assert metrics.status_code == 404
    local = {"X-Forwarded-For": "127.0.0.1"}
    health = behind_a_proxy.get("/healthz", environ_base=via_proxy, headers=local)
    assert DETAILS <= set(health.get_json())
    assert behind_a_proxy.get("/metrics", environ_base=via_proxy, headers=local).status_code == 200


def _reads(app, path: str) -> tuple[tuple[int, int], dict]:
    """How many SQL statements one request to path ran and how many rows they returned."""
    seen: list[int] = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        seen.append(max(cursor.rowcount, 0))

    event.listen(engine, "after_cursor_execute", count)
    try:
        response = app.test_client().get(path)
    finally:
        event.remove(engine, "after_cursor_execute", count)
    return (len(seen), sum(seen)), response.get_json(silent=True) or {}


def test_details_cost_the_same_however_many_providers(app, ctx, factories):
    from app.providers.routing import breaker

    org = factories.make_org()
    first = factories.make_provider_account(org, settings={"host": "127.0.0.1", "port": 1})
    db.session.commit()
    before, _ = _reads(app, "/healthz")
    for n in range(5):
        factories.make_provider_account(
            factories.make_org(f"Org {n}"), settings={"host": "127.0.0.1", "port": 1}
        )
    db.session.commit()
    for _ in range(app.config["BREAKER_THRESHOLD"]):
        breaker().failure(first.key)
    after, health = _reads(app, "/healthz")
    assert after == before
    assert health["breakers"] == {"default": "closed", "open": 1, "half-open": 0, "closed": 5}
