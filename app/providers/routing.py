"""Which providers a message goes through, and in what order (failover).

An org's enabled provider accounts, by position, form its route; with none, the deployment's own
SMTP settings (the dev mail sink in development). Within one batch a provider that failed is not
used again, and each provider's shared circuit breaker (in Redis) is asked once. Each sender keeps
its own provider objects, so its connections are its own (Connections).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.crypto import decrypt
from app.extensions import db, redis
from app.mail import dkim, metrics
from app.mail.verp import local_part, verp_key
from app.models import Organization, ProviderAccount, ProviderKind
from app.providers.base import OutgoingMessage, Provider, Result, Transient
from app.providers.breaker import Breaker, BreakerSettings
from app.providers.mailgun import MailgunProvider, MailgunSettings
from app.providers.smtp import SMTPProvider, SMTPSettings

log = logging.getLogger(__name__)
DEFAULT_KEY = "default"


class Connections:
    """One sender's providers by settings (so its connection is reused from message to message),
    bounded: the least recently used is closed first. Closed together when the sender stops."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.items: OrderedDict[Any, Provider] = OrderedDict()

    def get(self, settings: Any, make: Callable[[], Provider]) -> Provider:
        found = self.items.pop(settings, None) or make()
        self.items[settings] = found
        while len(self.items) > self.size:
            self.items.popitem(last=False)[1].close()
        return found

    def close(self) -> None:
        while self.items:
            self.items.popitem()[1].close()


class CredentialsUnreadable(Exception):
    """A provider's stored secret no key opens."""


@dataclass
class Route:
    """One provider of an org's list, as this batch sees it."""

    key: str  # the breaker's and the token bucket's name
    account_id: int | None
    name: str  # smtp | mailgun
    label: str
    make: Callable[[Connections], Provider]
    verdict: str | None = None  # the breaker's answer for this batch: closed, probe, blocked
    down: bool = False  # failed during this batch
    _provider: Provider | None = field(default=None, repr=False)

    def provider(self, connections: Connections) -> Provider:
        if self._provider is None:
            self._provider = self.make(connections)
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
    )


def dkim_signer(org_id: int | None) -> dkim.Signer | None:
    """The org's DKIM signer when it has DKIM on (built once per key, then reused)."""
    org = db.session.get(Organization, org_id) if org_id is not None else None
    if org is None or not org.dkim_enabled or not org.dkim_key_encrypted:
        return None
    return dkim.signer_for(org)


def smtp_provider(settings: SMTPSettings) -> SMTPProvider:
    """An SMTP provider that signs with the org's DKIM key and returns bounces by VERP."""
    key = verp_key()
    return SMTPProvider(settings, dkim=dkim_signer, verp=lambda ref: local_part(key, ref))


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
    return Route(
        DEFAULT_KEY, None, "smtp", label, lambda c: c.get(settings, lambda: smtp_provider(settings))
    )


def provider_for_account(
    account: ProviderAccount, connections: Connections | None = None
) -> Provider:
    """A provider object for an account (a sender's own, reused while its settings hold)."""
    connections = connections or Connections()
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
        return connections.get(settings, lambda: MailgunProvider(settings))
    smtp = smtp_settings(values, secret)
    return connections.get(smtp, lambda: smtp_provider(smtp))


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
        account.key,
        account.id,
        account.kind,
        account.label,
        lambda connections: provider_for_account(snapshot, connections),
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
    """Per batch of one sender: each org's routes, what the breakers allow, and sending with
    failover on the sender's own connections."""

    def __init__(self, connections: Connections) -> None:
        self._routes: dict[int, list[Route]] = {}
        self.breaker = breaker()
        self.connections = connections

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
            result = route.provider(self.connections).send(outgoing)
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
        busy: Callable[[str], float] = lambda key: 0.0,
    ) -> Outcome:
        """Try each route in turn while the provider itself is in trouble. Never after an
        unconfirmed answer (it may have been delivered), nor once the lease is lost. Before
        a failover hop, busy(route key) says how long that provider's rate makes it wait."""
        outcome = Outcome([])
        for index, route in enumerate(routes):
            if index:
                if not still_ours():
                    break
                wait = busy(route.key)
                if wait > 0:
                    outcome.busy_wait = wait
                    break
            attempt = self._try(route, outgoing)
            outcome.attempts.append(attempt)
            result = attempt.result
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
            break
        return outcome
