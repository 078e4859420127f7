"""Which providers a message goes through, and in what order (failover).

An org's enabled provider accounts, by position, form its route; with none, the deployment's own
SMTP settings (the dev mail sink in development). Within one batch a provider that failed is not
used again, and each provider's shared circuit breaker is asked once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from app.crypto import decrypt
from app.extensions import db, redis
from app.mail import metrics, throttle
from app.mail.verp import verp_key
from app.models import ProviderAccount, ProviderKind
from app.providers import (
    OutgoingMessage,
    Provider,
    Result,
    SMTPProvider,
    SMTPSettings,
    Transient,
    Withheld,
)
from app.providers.base import ProviderCache
from app.providers.breaker import Breaker, BreakerSettings
from app.providers.mailgun import MailgunProvider, MailgunSettings

log = logging.getLogger(__name__)
DEFAULT_KEY = "default"
_mailgun = ProviderCache()


class CredentialsUnreadable(Exception):
    """A provider's stored secret no key opens."""


@dataclass
class Route:
    """One provider of an org's list, as this batch sees it."""

    key: str  # the breaker's and the token bucket's name
    account_id: int | None
    name: str  # smtp | mailgun
    label: str
    make: Callable[[], Provider]
    verdict: str | None = None  # the breaker's answer for this batch: closed, probe, blocked
    down: bool = False  # failed during this batch
    _provider: Provider | None = field(default=None, repr=False)

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = self.make()
        return self._provider


def breaker() -> Breaker:
    """The shared breaker with the configured threshold, window and cool-down."""
    cfg = current_app.config
    settings = BreakerSettings(
        cfg["BREAKER_THRESHOLD"], cfg["BREAKER_WINDOW_SECONDS"], cfg["BREAKER_COOLDOWN_SECONDS"]
    )
    return Breaker(redis.client, settings)


def smtp_settings(values: dict, password: str | None, *, operator: bool = False) -> SMTPSettings:
    """SMTPSettings from stored (or deployment) values. An org's own server may not resolve to a
    private address (checked again at every connect) unless the deployment allows it."""
    cfg = current_app.config
    return SMTPSettings(
        host=values["host"],
        port=int(values["port"]),
        security=values.get("security", "none"),
        username=values.get("username") or None,
        password=password,
        timeout=cfg["SMTP_TIMEOUT_SECONDS"],
        bounce_domain=cfg["BOUNCE_DOMAIN"],
        allow_private=operator or cfg["ALLOW_PRIVATE_PROVIDER_HOSTS"],
        verp_key=verp_key(),
    )


def default_route() -> Route:
    """The deployment's SMTP settings: the route of an org without providers of its own."""
    cfg = current_app.config
    values = {
        "host": cfg["SMTP_HOST"],
        "port": cfg["SMTP_PORT"],
        "security": cfg["SMTP_SECURITY"],
        "username": cfg["SMTP_USERNAME"],
    }
    settings = smtp_settings(values, cfg["SMTP_PASSWORD"], operator=True)
    label = "Dev mail sink" if cfg["DEVMAIL_ENABLED"] else "Default SMTP"
    return Route(DEFAULT_KEY, None, "smtp", label, lambda: SMTPProvider.shared(settings))


def provider_for_account(account: ProviderAccount) -> Provider:
    """A provider object for an account (shared per settings, so connections are reused)."""
    secret = decrypt(account.secret_encrypted) if account.secret_encrypted else None
    if account.secret_encrypted and secret is None:
        raise CredentialsUnreadable(
            f"The saved password or key of {account.label} cannot be decrypted (ENCRYPTION_KEYS "
            "changed?): enter it again on the Providers page"
        )
    values = account.settings or {}
    if account.kind == ProviderKind.MAILGUN:
        cfg = current_app.config
        connect, read = cfg["MAILGUN_TIMEOUT"]
        settings = MailgunSettings(
            api_key=secret or "",
            domain=values.get("domain", ""),
            region=values.get("region", "us"),
            base_url=cfg["MAILGUN_BASE_URL"],
            connect_timeout=connect,
            read_timeout=read,
        )
        return _mailgun.get(settings, lambda: MailgunProvider(settings))  # type: ignore[return-value]
    return SMTPProvider.shared(smtp_settings(values, secret))


def route_for_account(account: ProviderAccount) -> Route:
    """A route holding a snapshot of the account (a removal mid-batch cannot break it)."""
    snapshot = ProviderAccount(
        id=account.id,
        org_id=account.org_id,
        kind=account.kind,
        label=account.label,
        settings=dict(account.settings or {}),
        secret_encrypted=account.secret_encrypted,
    )
    return Route(
        account.key, account.id, account.kind, account.label, lambda: provider_for_account(snapshot)
    )


def routes_for(org_id: int) -> list[Route]:
    """The org's enabled providers in order, or the deployment's default."""
    accounts = db.session.scalars(
        select(ProviderAccount)
        .where(ProviderAccount.org_id == org_id, ProviderAccount.enabled.is_(True))
        .order_by(ProviderAccount.position, ProviderAccount.id)
    ).all()
    return [route_for_account(a) for a in accounts] or [default_route()]


@dataclass
class Attempt:
    """What one provider answered for one message."""

    route: Route
    result: Result
    ms: float


@dataclass
class Outcome:
    """Every provider answer for one message; busy_wait is set when the next provider in line
    was busy (the message waits for it, and that is not one of its retries)."""

    attempts: list[Attempt]
    busy_wait: float | None = None


class Failover:
    """Per batch: each org's routes, what the breakers allow, and sending with failover."""

    def __init__(self) -> None:
        self._routes: dict[int, list[Route]] = {}
        self.breaker = breaker()

    def usable(self, org_id: int) -> list[Route]:
        """Routes worth trying now: not failed in this batch and allowed by their breaker."""
        if org_id not in self._routes:
            self._routes[org_id] = routes_for(org_id)
        usable = []
        for route in self._routes[org_id]:
            if route.down:
                continue
            if route.verdict is None:
                route.verdict = self.breaker.allow(route.key) or "blocked"
            if route.verdict != "blocked":
                usable.append(route)
        return usable

    def reopens_in(self, org_id: int) -> float:
        """Seconds until the first of the org's blocked providers may be tried again."""
        waits = [self.breaker.reopens_in(r.key) for r in self._routes.get(org_id, [])]
        return min([w for w in waits if w > 0] or [0.0])

    def _try(self, route: Route, outgoing: OutgoingMessage) -> Attempt:
        """One provider, one message; whatever it raises becomes provider trouble."""
        started = time.perf_counter()
        try:
            result = next(iter(route.provider.send_batch([outgoing])))
        except CredentialsUnreadable as exc:
            reason = str(exc)
            result = Transient(outgoing.ref, reason, provider_trouble=True)
        except Exception as exc:  # noqa: BLE001 - a provider bug must not kill the batch
            log.exception("provider %s raised for message %s", route.key, outgoing.ref)
            reason = f"{route.label} failed unexpectedly: {exc.__class__.__name__}"
            result = Transient(outgoing.ref, reason, provider_trouble=True)
        ms = (time.perf_counter() - started) * 1000
        metrics.observe_send(route.name, result, ms)
        return Attempt(route, result, ms)

    def send(
        self,
        outgoing: OutgoingMessage,
        routes: list[Route],
        still_ours: Callable[[], bool] = lambda: True,
    ) -> Outcome:
        """Try each route in turn while the provider itself is in trouble. Never after an
        unconfirmed answer (it may have been delivered), nor once the lease is lost."""
        outcome = Outcome([])
        for index, route in enumerate(routes):
            if index:
                if not still_ours():
                    break
                wait = throttle.take(None, 0, route.key)
                if wait > 0:
                    outcome.busy_wait = wait
                    break
            attempt = self._try(route, outgoing)
            outcome.attempts.append(attempt)
            result = attempt.result
            if isinstance(result, Withheld):  # the caller withdrew it: nothing was sent
                if route.verdict == "probe":  # it tested nothing: the next send probes
                    self.breaker.release_probe(route.key)
                    route.verdict = None
                break
            if isinstance(result, Transient) and result.provider_trouble:
                route.down = True
                if self.breaker.failure(route.key):
                    route.verdict = "blocked"
                log.warning("provider %s failed for message %s", route.key, outgoing.ref)
                if result.unconfirmed:
                    break
                continue
            if route.verdict == "probe":
                self.breaker.success(route.key)
                route.verdict = "closed"
            if isinstance(result, Transient) and result.retry_after:
                throttle.pause(route.key, result.retry_after)
            break
        return outcome
