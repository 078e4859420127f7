"""Email templates an organization authors, and their immutable versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.extensions import db
from app.models.mixins import TenantMixin, TimestampMixin


class TemplateKind(StrEnum):
    """What a template is for. Bulk kinds need an unsubscribe link and obey the daily cap."""

    INVITATION = "invitation"
    REMINDER = "reminder"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    FOLLOW_UP = "follow_up"
    CUSTOM = "custom"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def is_bulk(self) -> bool:
        return self in BULK_KINDS


BULK_KINDS = {
    TemplateKind.INVITATION,
    TemplateKind.REMINDER,
    TemplateKind.FOLLOW_UP,
    TemplateKind.CUSTOM,
}


class EmailTemplate(TenantMixin, TimestampMixin, db.Model):
    """A named template of one kind; its content lives in versions, the latest is current."""

    __tablename__ = "email_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("template_versions.id", use_alter=True, ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    current_version: Mapped[TemplateVersion | None] = relationship(
        foreign_keys=[current_version_id], post_update=True
    )

    @property
    def kind_enum(self) -> TemplateKind:
        return TemplateKind(self.kind)


class TemplateVersion(TenantMixin, TimestampMixin, db.Model):
    """One saved state of a template, never changed: messages pin the version they use."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("org_id", "template_id", "number"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("email_templates.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(200))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    template: Mapped[EmailTemplate] = relationship(foreign_keys=[template_id])
    created_by = relationship("User")


def default_template(org_id: int, kind: TemplateKind) -> EmailTemplate | None:
    """The org's template of this kind that mail of the kind uses: its default, else its
    oldest; None when it has none. Campaigns, reminders and the branding preview all ask."""
    return db.session.scalars(
        select(EmailTemplate)
        .where(
            EmailTemplate.org_id == org_id,
            EmailTemplate.kind == kind,
            EmailTemplate.deleted_at.is_(None),
        )
        .order_by(EmailTemplate.is_default.desc(), EmailTemplate.id)
        .limit(1)
    ).first()
