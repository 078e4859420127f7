"""Password guessing stays slow without letting a stranger lock the owner out.

Failed passwords are counted three ways (app/limits.py counters, windows and limits in config):
per (account, IP) tightly, per account loosely, per IP across accounts. An IP over its own limits
waits, the right password included. When the account's loose limit trips, an IP that has failed
for this account fewer than LOGIN_LIMIT_TRIPPED_PER_IP times may still try, so the owner logging
in from home (a typo or two included) gets in while a botnet gets a few guesses per address.
Each attempt counts before the password is checked (parallel guesses count too) and a right
password takes its count back.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app import limits


class TooManyAttempts(Exception):
    """This IP may not try this account's password for now."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(scope)
        self.retry_after = max(1, retry_after)
        self.scope = scope  # "ip" (guessing across accounts) or "account"

    def message(self) -> str:
        """What the person at the login form reads."""
        minutes = max(1, round(self.retry_after / 60))
        if self.scope == "ip":
            return f"Too many login attempts from your network. Try again in {minutes} minute(s)."
        return (
            f"Too many failed attempts for this account. Try again in {minutes} minute(s), "
            "or reset your password."
        )


@dataclass(frozen=True)
class Attempt:
    """One counted password attempt; `succeeded` takes it back."""

    account_ip: str
    account: str
    ip: str


def _keys(email: str, ip: str) -> Attempt:
    email = email.strip().lower()
    return Attempt(
        limits.key("login-account-ip", email, ip),
        limits.key("login-account", email),
        limits.key("login-ip", ip),
    )


def attempt(email: str, ip: str) -> Attempt:
    """Count one password attempt on `email` from `ip`, or raise TooManyAttempts (uncounted)."""
    cfg = current_app.config
    keys = _keys(email, ip)
    counted = limits.count(
        {
            keys.account_ip: cfg["LOGIN_LIMIT_ACCOUNT_IP_WINDOW_SECONDS"],
            keys.account: cfg["LOGIN_LIMIT_ACCOUNT_WINDOW_SECONDS"],
            keys.ip: cfg["LOGIN_LIMIT_IP_WINDOW_SECONDS"],
        }
    )
    if counted is None:
        return keys
    (pair, pair_ttl), (account, account_ttl), (ip_count, ip_ttl) = counted
    refusal = None
    if ip_count > cfg["LOGIN_LIMIT_PER_IP"]:
        refusal = TooManyAttempts(ip_ttl, "ip")
    elif pair > cfg["LOGIN_LIMIT_PER_ACCOUNT_IP"]:
        refusal = TooManyAttempts(pair_ttl, "account")
    elif account > cfg["LOGIN_LIMIT_PER_ACCOUNT"] and pair > cfg["LOGIN_LIMIT_TRIPPED_PER_IP"]:
        refusal = TooManyAttempts(account_ttl, "account")
    if refusal is not None:
        limits.uncount(keys.account_ip, keys.account, keys.ip)  # a refusal is not a guess
        raise refusal
    return keys


def succeeded(counted: Attempt) -> None:
    """The password was right: this IP's failures on the account are forgotten and the attempt
    is taken back from the account and IP counts (other IPs' failures stay)."""
    limits.clear(counted.account_ip)
    limits.uncount(counted.account, counted.ip)


def forgive(email: str, ip: str) -> None:
    """A password reset by email proves the owner: this IP may try the account again."""
    limits.clear(_keys(email, ip).account_ip)
