"""Invitation tokens: 32 random bytes, URL-safe; only the SHA-256 is a lookup key, and the token
itself is kept Fernet-encrypted so retries, reminders and resends reuse the candidate's link."""

from __future__ import annotations

import hashlib
import re
import secrets

from app.crypto import decrypt, encrypt

_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> tuple[str, bytes, str]:
    """(token, its SHA-256, the token encrypted)."""
    token = secrets.token_urlsafe(32)
    return token, digest(token), encrypt(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def well_formed(token: str) -> bool:
    """Cheap check before any lookup: a 43-character URL-safe token."""
    return bool(_SHAPE.match(token))


def reveal(encrypted: str | None) -> str | None:
    """The token from its encrypted copy (None once wiped or with an unknown key)."""
    return decrypt(encrypted) if encrypted else None
