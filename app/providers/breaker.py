"""A circuit breaker per provider, kept in Redis so every worker shares it.

closed: sends go through; failures are counted in a window. After `threshold` failures the breaker
opens for `cooldown` seconds: nobody uses the provider. When that expires it is half-open: one
worker alone gets to probe (SET NX). A probe that succeeds closes it; one that fails opens it again.
When Redis cannot answer, the breaker lets sends through (the provider's own errors still count).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True)
class BreakerSettings:
    """How many failures within how many seconds open it, and for how long."""

    threshold: int = 5
    window: float = 60.0
    cooldown: float = 30.0


class Breaker:
    """The shared breaker of each provider key (e.g. 'acct12', 'default')."""

    def __init__(self, client: Redis, settings: BreakerSettings) -> None:
        self.client = client
        self.settings = settings

    @staticmethod
    def _keys(key: str) -> tuple[str, str, str, str]:
        base = f"herald:breaker:{key}"
        return f"{base}:fails", f"{base}:open", f"{base}:tripped", f"{base}:probe"

    def state(self, key: str) -> str:
        """closed, open or half-open (for the UI, /healthz and /metrics)."""
        _, open_, tripped, _ = self._keys(key)
        try:
            is_open, was_tripped = self.client.exists(open_), self.client.exists(tripped)
        except RedisError:
            return CLOSED
        if is_open:
            return OPEN
        return HALF_OPEN if was_tripped else CLOSED

    def tripped(self) -> dict[str, str]:
        """Every provider key whose breaker is open or half-open, from Redis alone: a report
        costs a scan of the breaker keys, nothing per provider that is closed."""
        prefix, suffix = "herald:breaker:", ":tripped"
        try:
            found = self.client.scan_iter(match=f"{prefix}*{suffix}", count=1000)
            keys = [k.decode()[len(prefix) : -len(suffix)] for k in found]
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.exists(self._keys(key)[1])
            opened = pipe.execute() if keys else []
        except RedisError:
            return {}
        states = zip(keys, opened, strict=True)
        return {key: OPEN if is_open else HALF_OPEN for key, is_open in states}

    def reopens_in(self, key: str) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        try:
            ms = self.client.pttl(self._keys(key)[1])
        except RedisError:
            return 0.0
        return max(ms, 0) / 1000

    def allow(self, key: str) -> str | None:
        """'closed' or 'probe' when this worker may send through the provider, else None."""
        _, open_, tripped, probe = self._keys(key)
        try:
            if self.client.exists(open_):
                return None
            if not self.client.exists(tripped):
                return CLOSED
            ttl = max(1, int(self.settings.cooldown))
            return "probe" if self.client.set(probe, 1, nx=True, ex=ttl) else None
        except RedisError:
            return CLOSED

    def failure(self, key: str) -> bool:
        """Count one provider failure; True when this opened the breaker."""
        fails, open_, tripped, probe = self._keys(key)
        s = self.settings
        cool_ms = max(1, int(s.cooldown * 1000))
        try:
            if self.client.exists(tripped):  # a probe failed: open again
                self.client.set(open_, 1, px=cool_ms)
                self.client.delete(probe)
                return True
            count = self.client.incr(fails)
            if count == 1:  # the window starts at the first failure (no PEXPIRE NX on Redis 6)
                self.client.pexpire(fails, max(1, int(s.window * 1000)))
            if count < s.threshold:
                return False
            pipe = self.client.pipeline()
            pipe.set(open_, 1, px=cool_ms)
            pipe.set(tripped, 1, ex=7 * 24 * 3600)
            pipe.delete(fails)
            pipe.execute()
            log.warning("provider %s: breaker opened after %d failures", key, count)
            return True
        except RedisError:
            return False

    def success(self, key: str) -> None:
        """A send went through: a half-open breaker closes."""
        try:
            self.client.delete(*self._keys(key))
        except RedisError:
            pass

    def release_probe(self, key: str) -> None:
        """A probe that tested nothing (its message was withdrawn): the next send may probe."""
        try:
            self.client.delete(self._keys(key)[3])
        except RedisError:
            pass

    def reset(self, key: str) -> None:
        """Close it by hand (settings page after fixing the provider)."""
        self.success(key)
