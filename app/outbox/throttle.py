"""Sending rates shared by every worker: token buckets in Redis, taken atomically by a Lua
script (the org's bucket and the provider's together, or neither), on Redis's own clock."""

from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError

from app.extensions import redis

log = logging.getLogger(__name__)

_TAKE = """
local paused = redis.call('PTTL', KEYS[#KEYS])
if paused > 0 then return tostring(paused / 1000) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local want = tonumber(ARGV[#ARGV])
local wait = 0
local levels = {}
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local rate = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  local data = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(data[1]) or capacity
  local ts = tonumber(data[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
  want = math.min(want, math.floor(tokens))
end
if wait > 0 then want = 0 end
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local rate = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', levels[i] - want, 'ts', now)
  redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
end
return {want, tostring(wait)}
"""


def _pause_key(provider: str) -> str:
    return f"herald:bucket:pause:{provider}"


def pause(provider: str, seconds: float) -> None:
    """The provider said 429 Retry-After: nobody sends through it until then."""
    try:
        redis.client.set(_pause_key(provider), 1, px=max(1, int(seconds * 1000)))
    except RedisError:
        pass


def take(org_id: int | None, org_per_minute: int, provider: str) -> float:
    """Take one send from the org's and the provider's buckets (only the provider's when org_id is
    None, as on a failover): 0 when granted, else how many seconds until one is free. A provider
    paused by a 429 waits out its Retry-After. When Redis cannot say, wait (fail closed)."""
    granted, wait = take_many(org_id, org_per_minute, provider, 1)
    return 0.0 if granted else wait


def take_many(
    org_id: int | None, org_per_minute: int, provider: str, want: int
) -> tuple[int, float]:
    """Take up to `want` sends at once (a batch spends them one by one without asking Redis
    each time): (how many were granted, and when none, seconds until one is free)."""
    cfg = current_app.config
    burst = cfg["SEND_BURST"]
    provider_rate = cfg["PROVIDER_RATE_PER_MINUTE"]
    keys = [f"herald:bucket:provider:{provider}"]
    args: list[float] = [provider_rate / 60, max(1, min(burst, provider_rate))]
    if org_id is not None:
        keys.insert(0, f"herald:bucket:org:{org_id}")
        args[:0] = [org_per_minute / 60, max(1, min(burst, org_per_minute))]
    keys.append(_pause_key(provider))
    args.append(max(1, want))
    try:
        script = current_app.extensions.setdefault(
            "herald_take_script", redis.client.register_script(_TAKE)
        )
        answer = script(keys=keys, args=args)
    except RedisError as exc:
        log.warning("rate limiter unavailable (%s); holding sends for a moment", exc)
        return 0, 5.0
    if not isinstance(answer, list):  # paused by a 429: the seconds left
        return 0, float(answer)
    granted, wait = int(answer[0]), float(answer[1])
    return granted, (0.0 if granted else wait)
