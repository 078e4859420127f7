"""Login rate limits in Redis: attempts per client IP and failures per account, per window."""

from __future__ import annotations

import hashlib
import logging

from flask import current_app
from redis.exceptions import RedisError

from app.extensions import redis

log = logging.getLogger(__name__)


class TooManyAttempts(Exception):
    """The IP or the account is over its limit for now."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(scope)
        self.retry_after = retry_after
        self.scope = scope


def _key(scope: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]  # no address stored in Redis
    return f"herald:login:{scope}:{digest}"


def check_and_count_ip(ip: str) -> None:
    """Count one attempt from this IP; refuse when over LOGIN_LIMIT_PER_IP in the window."""
    cfg = current_app.config
    key = _key("ip", ip)
    try:
        pipe = redis.client.pipeline()
        pipe.set(key, 0, ex=cfg["LOGIN_LIMIT_WINDOW_SECONDS"], nx=True)  # window starts once
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    except RedisError:
        log.warning("login rate limit unavailable (Redis down); allowing the attempt")
        return
    if count > cfg["LOGIN_LIMIT_PER_IP"]:
        raise TooManyAttempts(max(ttl, 1), "ip")


def count_account_attempt(email: str) -> None:
    """Count a password attempt on this account before checking it (so parallel guesses count
    too); refuse when over LOGIN_LIMIT_PER_ACCOUNT in the window. A success clears the count."""
    cfg = current_app.config
    key = _key("account", email)
    try:
        pipe = redis.client.pipeline()
        pipe.set(key, 0, ex=cfg["LOGIN_LIMIT_WINDOW_SECONDS"], nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    except RedisError:
        log.warning("login rate limit unavailable (Redis down); allowing the attempt")
        return
    if count > cfg["LOGIN_LIMIT_PER_ACCOUNT"]:
        raise TooManyAttempts(max(ttl, 1), "account")


def clear_failures(email: str) -> None:
    """A successful login (or a password reset) clears the account's attempts."""
    try:
        redis.client.delete(_key("account", email))
    except RedisError:
        pass
