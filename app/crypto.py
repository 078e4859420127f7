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
