"""Provider accounts and DKIM keys: validate, store encrypted, test, audit every change."""

from __future__ import annotations

import ipaddress
import re
import socket

from flask import current_app
from sqlalchemy import func, select

from app import clock
from app.audit import audit
from app.crypto import decrypt, encrypt
from app.extensions import db
from app.mail import dkim
from app.mail.delivery import CredentialsUnreadable, breaker, provider_for_account
from app.models import Organization, ProviderAccount, ProviderKind, User

_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
_SELECTOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ProviderError(Exception):
    """A provider setting that cannot be used, with what to change (and which field, when it
    is one field's)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _private(host: str) -> bool:
    """Does the host name or address point at this machine or a private network?"""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False  # unresolvable: the connection test will say so
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved:
            return True
    return False


def check_smtp(values: dict) -> dict:
    """Clean SMTP settings or a ProviderError; loopback and private hosts only when allowed."""
    host = (values.get("host") or "").strip().lower()
    if not _HOST.match(host):
        raise ProviderError("Enter the SMTP server's host name, like smtp.example.com.", "host")
    try:
        port = int(values.get("port") or 0)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ProviderError("The port is a number from 1 to 65535 (usually 587 or 465).", "port")
    security = values.get("security") or "starttls"
    if security not in ("none", "starttls", "tls"):
        raise ProviderError("Choose how to secure the connection.", "security")
    if not current_app.config["ALLOW_PRIVATE_PROVIDER_HOSTS"] and _private(host):  # and at connect
        raise ProviderError(
            f"{host} points to this machine or a private network, which is not allowed.", "host"
        )
    username = (values.get("username") or "").strip()[:200]
    return {"host": host, "port": port, "security": security, "username": username}


def check_mailgun(values: dict) -> dict:
    """Clean Mailgun settings: a sending domain and a region (US or EU), never a free URL."""
    domain = (values.get("domain") or "").strip().lower()
    if not _DOMAIN.match(domain):
        raise ProviderError("Enter your Mailgun sending domain, like mg.example.com.", "domain")
    region = values.get("region") or "us"
    if region not in ("us", "eu"):
        raise ProviderError("Choose the US or EU region.", "region")
    return {"domain": domain, "region": region}


def save_account(
    org: Organization, user: User, kind: str, values: dict, account: ProviderAccount | None = None
) -> ProviderAccount:
    """Add or change a provider. An empty secret keeps the saved one; a new one is encrypted."""
    if kind not in (ProviderKind.SMTP, ProviderKind.MAILGUN):
        raise ProviderError("Choose SMTP or Mailgun.")
    clean = check_mailgun(values) if kind == ProviderKind.MAILGUN else check_smtp(values)
    label = (values.get("label") or "").strip()[:80] or (
        clean.get("domain") or clean.get("host") or kind
    )
    secret = (values.get("secret") or "").strip()
    if account is None:
        if kind == ProviderKind.MAILGUN and not secret:
            raise ProviderError("Enter the Mailgun API key.", "secret")
        last = db.session.scalar(
            select(func.max(ProviderAccount.position)).where(ProviderAccount.org_id == org.id)
        )
        account = ProviderAccount(org_id=org.id, kind=kind, position=(last or 0) + 1)
        db.session.add(account)
        action = "provider.added"
    else:
        action = "provider.changed"
    moved = account.settings and any(
        (account.settings or {}).get(k) != clean.get(k)
        for k in ("host", "port", "username", "domain")
    )
    if moved and account.secret_encrypted and not secret:
        # the saved secret must never be sent to a server the admin just typed in
        raise ProviderError("The server changed: enter the password or API key again.", "secret")
    account.label, account.settings = label, clean
    if secret:
        account.secret_encrypted = encrypt(secret)
    account.checked_at = account.check_ok = account.check_message = None
    db.session.flush()
    audit(org.id, user, action, provider=label, kind=kind, secret_changed=bool(secret))
    return account


def ordered(org: Organization) -> list[ProviderAccount]:
    return db.session.scalars(
        select(ProviderAccount)
        .where(ProviderAccount.org_id == org.id)
        .order_by(ProviderAccount.position, ProviderAccount.id)
    ).all()


def move(org: Organization, user: User, account: ProviderAccount, step: int) -> None:
    """Move a provider up (-1) or down (+1) in the failover order."""
    accounts = ordered(org)
    i = accounts.index(account)
    j = max(0, min(len(accounts) - 1, i + step))
    accounts.insert(j, accounts.pop(i))
    for position, item in enumerate(accounts, start=1):
        item.position = position
    audit(org.id, user, "provider.reordered", order=[a.label for a in accounts])


def set_enabled(org: Organization, user: User, account: ProviderAccount, on: bool) -> None:
    account.enabled = on
    audit(org.id, user, "provider.enabled" if on else "provider.disabled", provider=account.label)


def remove(org: Organization, user: User, account: ProviderAccount) -> None:
    audit(org.id, user, "provider.removed", provider=account.label)
    db.session.delete(account)


def test_connection(account: ProviderAccount) -> str | None:
    """Ask the provider (log in, or an authenticated API call); remember and return the answer."""
    try:
        problem = provider_for_account(account).check()
    except CredentialsUnreadable as exc:
        problem = str(exc)
    except Exception as exc:  # noqa: BLE001 - the page shows any failure as a message
        problem = f"Could not test: {exc.__class__.__name__}"
    account.checked_at, account.check_ok = clock.now(), problem is None
    fine = "Connected and logged in." if account.settings.get("username") else "Connected."
    if account.kind == "mailgun":
        fine = "Mailgun accepted the key for this domain."
    account.check_message = (problem or fine)[:500]
    return problem


def breaker_states(accounts: list[ProviderAccount]) -> dict[int, str]:
    b = breaker()
    return {a.id: b.state(a.key) for a in accounts}


def set_webhook_key(org: Organization, user: User, key: str) -> None:
    """Mailgun's HTTP webhook signing key (write-only; empty removes it)."""
    org.mailgun_signing_key_encrypted = encrypt(key[:200]) if key else None
    audit(org.id, user, "webhook_key.changed" if key else "webhook_key.removed")


# DKIM ----------------------------------------------------------------------------------------


def set_dkim_key(org: Organization, user: User, selector: str, pem: str | None) -> None:
    """Generate (pem None) or import a key; DKIM stays off until the DNS record checks out."""
    selector = (selector or "").strip().lower()
    if not _SELECTOR.match(selector):
        raise ProviderError("A selector is lower-case letters, digits and dashes, like herald1.")
    if not org.sending_domain:
        raise ProviderError(
            "Set a sender address on the Branding page first (DKIM signs its domain)."
        )
    if pem:
        try:
            dkim.load_key(pem)
        except dkim.DKIMKeyError as exc:
            raise ProviderError(str(exc)) from exc
    key = pem.strip() if pem else dkim.generate_key()
    org.dkim_selector, org.dkim_key_encrypted = selector, encrypt(key)
    org.dkim_enabled, org.dkim_checked_at, org.dkim_check_message = False, None, None
    audit(org.id, user, "dkim.key_imported" if pem else "dkim.key_generated", selector=selector)


def dkim_record(org: Organization) -> tuple[str, str] | None:
    """(name, value) of the TXT record to publish, when a key exists."""
    key = decrypt(org.dkim_key_encrypted) if org.dkim_key_encrypted else None
    if not key or not org.sending_domain:
        return None
    return dkim.record_name(org.dkim_selector, org.sending_domain), dkim.public_record(key)


def check_dkim(org: Organization, resolve=None) -> dkim.DNSCheck:  # noqa: ANN001
    """Look the record up in DNS and remember what was found."""
    key = decrypt(org.dkim_key_encrypted) if org.dkim_key_encrypted else None
    if not key or not org.sending_domain:
        raise ProviderError("Create a DKIM key first.")
    result = dkim.check_dns(org.dkim_selector, org.sending_domain, key, resolve=resolve)
    org.dkim_checked_at, org.dkim_check_message = clock.now(), result.message[:300]
    return result


def set_dkim_enabled(org: Organization, user: User, on: bool) -> None:
    if on and not org.dkim_key_encrypted:
        raise ProviderError("Create a DKIM key first.")
    org.dkim_enabled = on
    audit(org.id, user, "dkim.enabled" if on else "dkim.disabled", selector=org.dkim_selector)
