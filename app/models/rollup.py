"""Dashboard counters, kept up to date from events (never a scan of the events table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.mixins import TenantMixin

COUNTERS = (
    "sent",
    "delivered",
    "bounced",
    "complained",
    "failed",
    "opens",
    "opens_human",
    "unique_opens",
    "unique_opens_human",
    "clicks",
    "clicks_human",
    "unique_clicks",
    "unique_clicks_human",
    "accepted",
    "declined",
    "unsubscribed",
    "views",
    "views_human",
    "unique_views",
    "unique_views_human",
)


class Rollup(TenantMixin, db.Model):
    """Counts for one 15-minute UTC bucket of one campaign (template and job with it).
    Mail outside campaigns has campaign_id, template_id and job_id 0."""

    __tablename__ = "rollups"
    __table_args__ = (UniqueConstraint("org_id", "bucket", "campaign_id", "template_id", "job_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    campaign_id: Mapped[int] = mapped_column(Integer, default=0)
    template_id: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    complained: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    opens: Mapped[int] = mapped_column(Integer, default=0)
    opens_human: Mapped[int] = mapped_column(Integer, default=0)
    unique_opens: Mapped[int] = mapped_column(Integer, default=0)
    unique_opens_human: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    clicks_human: Mapped[int] = mapped_column(Integer, default=0)
    unique_clicks: Mapped[int] = mapped_column(Integer, default=0)
    unique_clicks_human: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    declined: Mapped[int] = mapped_column(Integer, default=0)
    unsubscribed: Mapped[int] = mapped_column(Integer, default=0)
    # views of the candidate's invitation page (the link in the invitation, not tracked as a click)
    views: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    views_human: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unique_views: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unique_views_human: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RollupMark(db.Model):
    """How far the rollups have read the events table. Events up to `upto` are applied; `seen`
    is the newest id at the previous run, applied next time (so a slow commit is not skipped)."""

    __tablename__ = "rollup_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    upto: Mapped[int] = mapped_column(BigInteger, default=0)
    seen: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
