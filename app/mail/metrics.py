"""Send counters and latency buckets, kept in Redis so /metrics sees every worker's figures.

Workers add to in-process tallies while sending and flush them once per batch (one pipeline), so
measuring costs no round trip per message. Redis being disposable, these are counters that may
reset, which Prometheus handles; the outbox table stays the truth for totals.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from redis.exceptions import RedisError

from app.extensions import redis
from app.providers import Accepted, Permanent, Result, Transient

log = logging.getLogger(__name__)

SENDS_KEY = "herald:metrics:sends"  # hash "provider|outcome" -> count
LATENCY_KEY = "herald:metrics:latency"  # hash "provider|le" -> count, plus "provider|sum_ms"
BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
_lock = threading.Lock()
_sends: Counter[str] = Counter()
_latency: Counter[str] = Counter()


def outcome_of(result: Result) -> str:
    """A short, bounded label: accepted, permanent, transient, provider_trouble, rate_limited."""
    if isinstance(result, Accepted):
        return "accepted"
    if isinstance(result, Permanent):
        return "permanent"
    if isinstance(result, Transient) and result.provider_trouble:
        return "provider_trouble"
    if isinstance(result, Transient) and result.retry_after:
        return "rate_limited"
    return "transient"


def observe_send(provider: str, result: Result, ms: float) -> None:
    """Tally one provider answer and how long it took."""
    with _lock:
        _sends[f"{provider}|{outcome_of(result)}"] += 1
        for bound in BUCKETS_MS:
            if ms <= bound:
                _latency[f"{provider}|{bound}"] += 1
        _latency[f"{provider}|+Inf"] += 1
        _latency[f"{provider}|sum_ms"] += round(ms)


def flush() -> None:
    """Add the tallies to Redis (losing them quietly when Redis is away)."""
    with _lock:
        sends, latency = dict(_sends), dict(_latency)
        _sends.clear()
        _latency.clear()
    if not sends and not latency:
        return
    try:
        pipe = redis.client.pipeline(transaction=False)
        for field, n in sends.items():
            pipe.hincrby(SENDS_KEY, field, n)
        for field, n in latency.items():
            pipe.hincrby(LATENCY_KEY, field, n)
        pipe.execute()
    except RedisError as exc:
        log.warning("send metrics not recorded: %s", exc)


REJECTS_KEY = "herald:metrics:rejects"  # hash "source|reason" -> count


def count_reject(source: str, reason: str) -> None:
    """Count one refused request (a bad tracking link, a forged webhook, a DSN that is not)."""
    try:
        redis.client.hincrby(REJECTS_KEY, f"{source}|{reason}", 1)
    except RedisError:
        pass
