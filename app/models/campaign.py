"""Campaigns (bulk invitations), per-candidate invitations with secure tokens, reminders,
and suppressions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.mixins import TenantMixin, TimestampMixin


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class Campaign(TenantMixin, TimestampMixin, db.Model):
    """A bulk invitation: a job, a pinned template version, recipients, when to send."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("email_templates.id", ondelete="RESTRICT"))
    template_version_id: Mapped[int] = mapped_column(
        ForeignKey("template_versions.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT, index=True)
    audience: Mapped[dict] = mapped_column(JSONB, default=dict)  # tag / search / candidate ids
    respond_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slot_starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slot_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    location: Mapped[str | None] = mapped_column(String(300))
    # 'fixed' (slot_starts_at for everyone), 'slots' (candidates book interview_slots), 'none'
    scheduling: Mapped[str] = mapped_column(String(8), default="none", server_default="none")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[dict] = mapped_column(JSONB, default=dict)
    context: Mapped[dict] = mapped_column(JSONB, default=dict)  # shared template data, frozen
    tracking_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    paused_reason: Mapped[str | None] = mapped_column(String(300))  # set when health paused it
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    job = relationship("Job")
    template = relationship("EmailTemplate")
    template_version = relationship("TemplateVersion")
    created_by = relationship("User")


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


# Why a candidate declined (optional; the page offers these, and a note)
DECLINE_REASONS = {
    "another_offer": "Accepted another offer",
    "not_interested": "Not interested anymore",
    "timing": "Timing doesn't work",
    "other": "Other",
}


class Invitation(TenantMixin, TimestampMixin, db.Model):
    """One candidate's invitation: a 32-byte random token stored as its SHA-256 hash (the token
    itself only Fernet-encrypted, so retries and reminders reuse the same link)."""

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_candidate_job", "org_id", "candidate_id", "job_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=InvitationStatus.PENDING)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ics_sequence: Mapped[int] = mapped_column(Integer, default=0)
    decline_reason: Mapped[str | None] = mapped_column(String(40))  # a code of DECLINE_REASONS
    decline_note: Mapped[str | None] = mapped_column(Text)  # the candidate's own words
    no_slot_fits_note: Mapped[str | None] = mapped_column(Text)  # "None of these times work"

    campaign = relationship("Campaign")
    candidate = relationship("Candidate")
    job = relationship("Job")

    @property
    def decline_label(self) -> str:
        """The reason as the candidate chose it ("" when none)."""
        return DECLINE_REASONS.get(self.decline_reason or "", "")


class Reminder(TenantMixin, db.Model):
    """A reminder due before the interview or deadline; unique per invitation and offset."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("invitation_id", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # e.g. "t-1440m"
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))


class Suppression(TenantMixin, TimestampMixin, db.Model):
    """An address Herald must not mail (for some kinds or all): unsubscribed, bounced, ..."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    scope: Mapped[list] = mapped_column(JSONB, default=lambda: ["all"])
    reason: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(40))  # one-click, preferences, csv, ...
    note: Mapped[str | None] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
