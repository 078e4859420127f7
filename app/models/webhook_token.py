"""Mailgun signature tokens already used, per organization: a webhook is accepted once per token.

Recorded in the same transaction as the event it carried, so a delivery whose commit failed left
no trace and Mailgun's retry with the same token is accepted; the primary key refuses a replay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.extensions import db


class WebhookToken(db.Model):
    """One used token; purged once its signature is too old to be accepted anyway."""

    __tablename__ = "webhook_tokens"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(256), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=clock.now, index=True
    )
