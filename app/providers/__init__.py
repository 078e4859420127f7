"""Email providers behind one small interface (see base.py), one module per provider."""

from __future__ import annotations

from flask import Flask

from app.providers.base import Accepted, OutgoingMessage, Permanent, Provider, Result, Transient
from app.providers.smtp import SMTPProvider, SMTPSettings

__all__ = [
    "Accepted",
    "OutgoingMessage",
    "Permanent",
    "Provider",
    "Result",
    "SMTPProvider",
    "Transient",
    "provider_for",
]


def provider_for(app: Flask) -> Provider:
    """The provider this deployment sends through (per-org provider lists come later)."""
    cfg = app.config
    settings = SMTPSettings(
        host=cfg["SMTP_HOST"],
        port=cfg["SMTP_PORT"],
        security=cfg["SMTP_SECURITY"],
        username=cfg["SMTP_USERNAME"],
        password=cfg["SMTP_PASSWORD"],
        timeout=cfg["SMTP_TIMEOUT_SECONDS"],
    )
    return SMTPProvider.shared(settings)
