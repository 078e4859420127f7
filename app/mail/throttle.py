"""Sending rates shared by every worker: token buckets in Redis, taken atomically by a Lua
script (the org's bucket and the provider's together, or neither), on Redis's own clock."""

from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError

from app.extensions import redis

log = logging.getLogger(__name__)

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  local data = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(data[1]) or capacity
  local ts = tonumber(data[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  local tokens = levels[i]
  if wait == 0 then tokens = tokens - 1 end
  redis.call('HSET', key, 'tokens', tokens, 'ts', now)
  redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
end
return tostring(wait)
"""


def take(org_id: int, org_per_minute: int, provider: str) -> float:
    """Take one send from the org's and the provider's buckets: 0 when granted, else how many
    seconds until one is free. When Redis cannot say, wait (fail closed: never a burst)."""
    cfg = current_app.config
    burst = cfg["SEND_BURST"]
    provider_rate = cfg["PROVIDER_RATE_PER_MINUTE"]
    keys = [f"herald:bucket:org:{org_id}", f"herald:bucket:provider:{provider}"]
    args = [
        org_per_minute / 60,
        max(1, min(burst, org_per_minute)),
        provider_rate / 60,
        max(1, min(burst, provider_rate)),
    ]
    try:
        script = current_app.extensions.setdefault(
            "herald_take_script", redis.client.register_script(_TAKE)
        )
        return float(script(keys=keys, args=args))
    except RedisError as exc:
        log.warning("rate limiter unavailable (%s); holding sends for a moment", exc)
        return 5.0
