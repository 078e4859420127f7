"""Email providers behind one small interface (see base.py), one module per provider. Which
providers an org uses, and failing over between them, is app/mail/delivery.py."""

from __future__ import annotations

from app.providers.base import (
    Accepted,
    OutgoingMessage,
    Permanent,
    Provider,
    Result,
    Transient,
    Withheld,
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
    "Withheld",
]
