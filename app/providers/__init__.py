"""Email providers behind one small interface (see base.py), one module per provider; which
providers an org uses, and failing over between them, is routing.py."""

from __future__ import annotations

from app.providers.base import (
    Accepted,
    OutgoingMessage,
    Permanent,
    Provider,
    Result,
    Transient,
)
from app.providers.smtp import SMTPProvider, SMTPSettings

__all__ = [
    "Accepted",
    "OutgoingMessage",
    "Permanent",
    "Provider",
    "Result",
    "SMTPProvider",
    "SMTPSettings",
    "Transient",
]
