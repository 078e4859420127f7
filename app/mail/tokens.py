"""Signed links (itsdangerous), one salt per purpose so a token for one thing opens nothing else."""

from __future__ import annotations

import functools
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PURPOSES = {"team-invite", "password-reset", "verify-email", "unsubscribe", "booking-form"}


class InvalidToken(Exception):
    """The link is forged, damaged or expired."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _built(current_app.config["SECRET_KEY"], purpose)


@functools.lru_cache(maxsize=16)
def _built(secret: str, purpose: str) -> URLSafeTimedSerializer:
    """One serializer per secret and purpose (a worker signs one or two links per mail)."""
    return URLSafeTimedSerializer(secret, salt=f"herald:{purpose}")


def sign(purpose: str, payload: Any) -> str:
    """A URL-safe signed, timestamped token carrying `payload`."""
    return _serializer(purpose).dumps(payload)


def unsign(purpose: str, token: str, max_age: int) -> Any:
    """The payload of a token made by sign() for the same purpose, if younger than max_age."""
    try:
        return _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidToken(expired=True) from exc
    except (BadSignature, UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken() from exc
