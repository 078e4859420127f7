"""Sending rates shared by every worker: token buckets in Redis, taken atomically by a Lua
script (the org's bucket and the provider's together, or neither), on Redis's own clock.

Each lane has its own org bucket, so a bulk campaign at its rate never holds a password reset;
bulk mail may use only part of a provider's rate, so transactional mail always finds some."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError

from app.extensions import redis
from app.models import ACCOUNT_MAIL_KINDS, Lane

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


@dataclass(frozen=True)
class Charge:
    """Whose rates one send is charged to: its org's bulk or transactional bucket (none when
    `org_rate` is off: Herald's own account mail), and the provider's, in its lane."""

    org_id: int | None
    lane: str = Lane.BULK
    org_rate: bool = True


def charge_for(org_id: int, kind: str, lane: str) -> Charge:
    """Account mail (reset, confirmation, teammate invite) is Herald's, not the org's: it is
    charged to no org's rate; an org's other mail to its bucket of the message's lane."""
    if kind in ACCOUNT_MAIL_KINDS:
        return Charge(org_id, Lane.TRANSACTIONAL, org_rate=False)
    return Charge(org_id, Lane(lane))


def buckets(charge: Charge, org_per_minute: int, provider: str) -> list[tuple[str, float, float]]:
    """(key, tokens per second, capacity) of each bucket a send takes one token from. Bulk mail
    takes from the org's bulk bucket and from its share of the provider's rate and burst (the
    rest is kept for transactional mail); transactional mail from the org's transactional bucket
    (none for account mail) and the provider's whole rate and burst."""
    cfg = current_app.config
    burst = cfg["SEND_BURST"]
    provider_rate = cfg["PROVIDER_RATE_PER_MINUTE"]
    kept = cfg["PROVIDER_TRANSACTIONAL_SHARE"]
    reserve = max(1, round(burst * kept))  # sends of the provider's burst that bulk cannot take
    chosen = [(f"herald:bucket:provider:{provider}", provider_rate, burst + reserve)]
    if charge.lane == Lane.BULK:
        bulk_key = f"herald:bucket:provider:{provider}:bulk"
        chosen.append((bulk_key, provider_rate * (1 - kept), burst))
        if charge.org_rate and charge.org_id is not None:
            chosen.insert(0, (f"herald:bucket:org:{charge.org_id}", org_per_minute, burst))
    elif charge.org_rate and charge.org_id is not None:
        rate, org_burst = cfg["TRANSACTIONAL_RATE_PER_MINUTE"], cfg["TRANSACTIONAL_BURST"]
        chosen.insert(0, (f"herald:bucket:org:{charge.org_id}:transactional", rate, org_burst))
    return [(key, rate / 60, max(1.0, min(cap, rate))) for key, rate, cap in chosen]


def take(who: Charge | int | None, org_per_minute: int, provider: str) -> float:
    """Take one send from the buckets `who` is charged to (an org id: its bulk rate; None: only
    the provider's whole rate, as on a failover): 0 when granted, else how many seconds until
    one is free. A provider paused by a 429 waits out its Retry-After. When Redis cannot say,
    wait (fail closed)."""
    if not isinstance(who, Charge):
        who = Charge(who, Lane.BULK if who is not None else Lane.TRANSACTIONAL)
    granted, wait = take_many(who, org_per_minute, provider, 1)
    return 0.0 if granted else wait


def take_many(charge: Charge, org_per_minute: int, provider: str, want: int) -> tuple[int, float]:
    """Take up to `want` sends at once (a batch spends them one by one without asking Redis
    each time): (how many were granted, and when none, seconds until one is free)."""
    chosen = buckets(charge, org_per_minute, provider)
    keys = [key for key, _, _ in chosen] + [_pause_key(provider)]
    args: list[float] = [n for _, rate, capacity in chosen for n in (rate, capacity)]
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
