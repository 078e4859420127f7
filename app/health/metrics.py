"""/metrics for Prometheus: figures read from PostgreSQL and Redis at scrape time, so every web
process answers the same and no worker has to expose anything.

Seen only by an operator (health/access.py): METRICS_TOKEN, or loopback without one.
"""

from __future__ import annotations

from flask import Response, abort
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from redis.exceptions import RedisError
from sqlalchemy import func, select

from app import clock
from app.extensions import csrf, db, redis
from app.health import bp
from app.health.access import operator
from app.mail.metrics import BUCKETS_MS, LATENCY_KEY, REJECTS_KEY, SENDS_KEY
from app.models import Lane, Message, MessageStatus
from app.providers.routing import DEFAULT_KEY, breaker
from app.queues import ALL, queue
from app.tenancy import ALL_ORGS

BREAKER_VALUE = {"closed": 0, "half-open": 1, "open": 2}


class HeraldCollector:
    """Yields every Herald metric from the stores, once per scrape."""

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        yield from self._messages()
        try:
            yield from self._redis_figures()
        except RedisError:
            pass

    def _messages(self):  # noqa: ANN202
        gauge = GaugeMetricFamily(
            "herald_messages",
            "Messages in the outbox by status, provider and lane",
            labels=["status", "provider", "lane"],
        )
        rows = db.session.execute(
            select(
                Message.status, func.coalesce(Message.provider, "none"), Message.lane, func.count()
            )
            .group_by(Message.status, Message.provider, Message.lane)
            .execution_options(**ALL_ORGS)
        )
        for status, provider, lane, count in rows:
            gauge.add_metric([status, provider, lane], count)
        yield gauge
        yield self._oldest_due()

    def _oldest_due(self) -> GaugeMetricFamily:
        """How long the oldest due queued message of each lane has waited: a transactional
        lane that waits long is the alert (a campaign at its rate makes the bulk lane wait)."""
        family = GaugeMetricFamily(
            "herald_oldest_due_seconds",
            "Seconds the oldest due queued message of each lane has waited (0 when none)",
            labels=["lane"],
        )
        now = clock.now()
        for lane in Lane:  # one lane at a time: each reads its oldest row from an index
            since = db.session.scalar(
                select(func.min(Message.send_after))
                .where(
                    Message.status == MessageStatus.QUEUED,
                    Message.lane == lane.value,
                    Message.send_after <= now,
                )
                .execution_options(**ALL_ORGS)
            )
            family.add_metric([lane.value], (now - since).total_seconds() if since else 0.0)
        return family

    def _redis_figures(self):  # noqa: ANN202
        client = redis.client
        sends = CounterMetricFamily(
            "herald_provider_answers",
            "Provider answers by provider and outcome",
            labels=["provider", "outcome"],
        )
        for field, value in client.hgetall(SENDS_KEY).items():
            provider, _, outcome = field.decode().partition("|")
            sends.add_metric([provider, outcome], int(value))
        yield sends
        yield from self._latency(client.hgetall(LATENCY_KEY))
        rejects = CounterMetricFamily(
            "herald_rejected_requests",
            "Refused tracking links, webhooks and inbound mail, by source and reason",
            labels=["source", "reason"],
        )
        for field, value in client.hgetall(REJECTS_KEY).items():
            source, _, reason = field.decode().partition("|")
            rejects.add_metric([source, reason], int(value))
        yield rejects
        depth = GaugeMetricFamily(
            "herald_queue_depth", "Jobs waiting per RQ queue", labels=["queue"]
        )
        for name in ALL:
            depth.add_metric([name], queue(name).count)
        yield depth
        yield self._breakers()

    def _latency(self, raw: dict):  # noqa: ANN202
        by_provider: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            provider, _, le = field.decode().partition("|")
            by_provider.setdefault(provider, {})[le] = int(value)
        family = HistogramMetricFamily(
            "herald_send_latency_ms",
            "Time a provider took to answer one message (ms)",
            labels=["provider"],
        )
        for provider, counts in by_provider.items():
            buckets = [(str(b), counts.get(str(b), 0)) for b in BUCKETS_MS]
            buckets.append(("+Inf", counts.get("+Inf", 0)))
            family.add_metric([provider], buckets, counts.get("sum_ms", 0))
        yield family

    def _breakers(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "herald_breaker_state",
            "Circuit breaker of the default provider and of each provider not closed: "
            "0 closed, 1 half-open, 2 open (a provider not listed is closed)",
            labels=["provider"],
        )
        states = {DEFAULT_KEY: "closed", **breaker().tripped()}
        for key, state in states.items():
            family.add_metric([key], BREAKER_VALUE[state])
        return family


@bp.get("/metrics")
@csrf.exempt
def metrics() -> Response:
    if not operator():
        abort(404)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HeraldCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
