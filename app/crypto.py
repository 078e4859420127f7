"""Secrets at rest: Fernet (MultiFernet for rotation) with keys from ENCRYPTION_KEYS."""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


@functools.lru_cache(maxsize=8)
def _fernet(keys: str, secret: str) -> MultiFernet:
    if keys:
        return MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
    derived = base64.urlsafe_b64encode(hashlib.sha256(b"herald-fernet:" + secret.encode()).digest())
    return MultiFernet([Fernet(derived)])


def fernet() -> MultiFernet:
    """The app's MultiFernet: the first key encrypts, all keys decrypt."""
    cfg = current_app.config
    return _fernet(cfg.get("ENCRYPTION_KEYS") or "", cfg["SECRET_KEY"])


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str | None:
    """The plain text, or None when no key opens it."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def rotate() -> dict[str, int]:
    """Re-encrypt provider secrets, DKIM keys and invitation tokens with the newest key (in the
    current transaction). A value no key opens is left as it is and counted."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Invitation, Organization, ProviderAccount
    from app.tenancy import ALL_ORGS

    f = fernet()
    counts = {"provider secrets": 0, "DKIM keys": 0, "invitation links": 0, "unreadable": 0}
    columns = (
        (ProviderAccount, "secret_encrypted", "provider secrets"),
        (Organization, "dkim_key_encrypted", "DKIM keys"),
        (Invitation, "token_encrypted", "invitation links"),
    )
    for model, column, label in columns:
        attr = getattr(model, column)
        query = select(model).where(attr.is_not(None)).execution_options(yield_per=1000, **ALL_ORGS)
        for row in db.session.scalars(query):
            try:
                setattr(row, column, f.rotate(getattr(row, column).encode()).decode())
                counts[label] += 1
            except (InvalidToken, ValueError):
                counts["unreadable"] += 1
    return counts
