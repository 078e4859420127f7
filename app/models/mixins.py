"""Column sets shared by models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app import clock


class TimestampMixin:
    """created_at set from the app clock."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)


class TenantMixin:
    """A row owned by one organization. tenancy.py scopes every query on these to current_org."""

    @declared_attr
    def org_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy declared_attr
        return mapped_column(
            ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
        )
