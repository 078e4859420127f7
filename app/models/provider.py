"""An organization's email providers, in the order Herald tries them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.mixins import TenantMixin, TimestampMixin


class ProviderKind(StrEnum):
    SMTP = "smtp"
    MAILGUN = "mailgun"

    @property
    def label(self) -> str:
        return "SMTP server" if self is ProviderKind.SMTP else "Mailgun"


class ProviderAccount(TenantMixin, TimestampMixin, db.Model):
    """One provider in an org's failover list. `settings` holds what is safe to show (host, port,
    domain, region); the password or API key lives only Fernet-encrypted in `secret_encrypted`."""

    __tablename__ = "provider_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(80))
    settings: Mapped[dict] = mapped_column(JSONB, default=dict)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    check_ok: Mapped[bool | None] = mapped_column(Boolean)
    check_message: Mapped[str | None] = mapped_column(String(500))

    @property
    def key(self) -> str:
        """The name of this provider's breaker and token bucket in Redis."""
        return f"acct{self.id}"

    @property
    def summary(self) -> str:
        """Where it sends, without secrets."""
        s = self.settings or {}
        if self.kind == ProviderKind.MAILGUN:
            return f"{s.get('domain', '?')} ({str(s.get('region', 'us')).upper()} region)"
        security = {"none": "no TLS", "starttls": "STARTTLS", "tls": "TLS"}.get(
            s.get("security", "none"), "no TLS"
        )
        return f"{s.get('host', '?')}:{s.get('port', '?')} ({security})"
