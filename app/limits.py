"""Fixed-window counters in Redis: the one way Herald rate-limits requests (public pages, password
reset requests, failed logins). Every refusal is a 429 that says when to come back (Retry-After).

When Redis cannot answer the limits are off (logged): candidates and teammates keep working, and
PostgreSQL still holds everything that matters.
"""

from __future__ import annotations

import hashlib
import logging

from redis.exceptions import RedisError
from werkzeug.exceptions import TooManyRequests as _TooManyRequests

from app.extensions import redis

log = logging.getLogger(__name__)

# Take one back only if the window is still open (a DECR on an expired key would start a window
# with no end).
_UNCOUNT = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
return 0
"""


class TooManyRequests(_TooManyRequests):
    """A 429 with the seconds to wait; the error page sends them as Retry-After."""

    def __init__(self, retry_after: int, description: str) -> None:
        super().__init__(description, retry_after=max(1, int(retry_after)))


def key(scope: str, *values: str) -> str:
    """A counter's Redis key; values are hashed, so no address or IP is stored in Redis."""
    digest = hashlib.sha256("\x1f".join(values).encode()).hexdigest()[:32]
    return f"herald:limit:{scope}:{digest}"


def count(windows: dict[str, int]) -> list[tuple[int, int]] | None:
    """Add one to each counter (its window starts with its first hit, in seconds) and return
    (count, seconds left) per counter in order; None when Redis cannot say."""
    try:
        pipe = redis.client.pipeline()
        for name, seconds in windows.items():
            pipe.set(name, 0, ex=seconds, nx=True)
            pipe.incr(name)
            pipe.ttl(name)
        answers = pipe.execute()
    except RedisError:
        log.warning("rate limits unavailable (Redis down); allowing the request")
        return None
    return [(answers[i + 1], max(answers[i + 2], 1)) for i in range(0, len(answers), 3)]


def uncount(*names: str) -> None:
    """Take back one count from each counter whose window is still open."""
    try:
        redis.client.eval(_UNCOUNT, len(names), *names)
    except RedisError:
        pass


def clear(name: str) -> None:
    """Forget a counter."""
    try:
        redis.client.delete(name)
    except RedisError:
        pass


def hit(scope: str, value: str, limit: int, window: int, description: str) -> None:
    """Count one request for `value` (an IP, say); TooManyRequests once over `limit` per window."""
    counted = count({key(scope, value): window})
    if counted and counted[0][0] > limit:
        raise TooManyRequests(counted[0][1], description)
