"""The outbox: one row per email, written before anything is queued, and its event history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.extensions import db
from app.models.mixins import TenantMixin, TimestampMixin
from app.models.template import BULK_KINDS


class MessageStatus(StrEnum):
    """Where a message is in the outbox."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"  # the recipient is on the org's suppression list
    DISCARDED = "discarded"  # failed, then set aside by a person with a reason


# "Send test to me" from the template editor: marked [Test] and left out of every figure.
TEMPLATE_TEST = "template_test"
# Herald's own mail about a person's account: it belongs to that person, not to their org's team
ACCOUNT_MAIL_KINDS = frozenset({"verify_email", "password_reset", "team_invite"})


class Lane(StrEnum):
    """Which line a message waits in: a person waits for transactional mail, nobody for bulk."""

    TRANSACTIONAL = "transactional"
    BULK = "bulk"


def lane_for(kind: str, lane: str | None = None) -> Lane:
    """The lane of a message: the one asked for (an API send marked transactional), else its
    kind's. Only the bulk kinds are bulk; account mail, notices that an interview moved or was
    cancelled, answers to the recruiter, bookings and tests are transactional."""
    if lane is not None:
        return Lane(lane)  # ValueError for anything but the two lanes
    return Lane.BULK if kind in BULK_KINDS else Lane.TRANSACTIONAL


class Message(TenantMixin, TimestampMixin, db.Model):
    """One email to one recipient. PostgreSQL is the truth; RQ jobs carry only its id."""

    __tablename__ = "messages"
    __table_args__ = (
        Index(
            "ix_messages_due",
            "send_after",
            postgresql_where=text("status = 'queued'"),
        ),
        # the claim's order: transactional rows before bulk, then oldest due first
        Index(
            "ix_messages_claim",
            text("(lane = 'bulk')"),
            "send_after",
            "id",
            postgresql_where=text("status = 'queued'"),
        ),
        Index("ix_messages_lease", "lease_until", postgresql_where=text("status = 'sending'")),
        Index("ix_messages_failed", "org_id", "id", postgresql_where=text("status = 'failed'")),
        Index(
            "ix_messages_invitation",
            "invitation_id",
            postgresql_where=text("invitation_id IS NOT NULL"),
        ),
        UniqueConstraint("org_id", "idempotency_key"),
        CheckConstraint("lane IN ('transactional', 'bulk')", name="ck_messages_lane"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    lane: Mapped[str] = mapped_column(String(16))  # Lane: set by queue_message and the fan-out
    template: Mapped[str] = mapped_column(String(64))  # a built-in template key, or "version"
    template_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("template_versions.id", ondelete="RESTRICT"), index=True
    )
    context: Mapped[dict] = mapped_column(JSONB, default=dict)
    to_email: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED, index=True)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    send_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[str | None] = mapped_column(String(32))  # who holds the lease
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # when the attempt now on the wire began; NULL while the row is only claimed (see the cap)
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_accounts.id", ondelete="SET NULL"), index=True
    )
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    provider_response: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What happened after sending: delivered < opened < clicked never moves backwards; bounces
    # and complaints are recorded beside it. *_human are the first human open / click.
    delivery: Mapped[str | None] = mapped_column(String(16))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    human_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    human_clicked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the candidate's invitation page: first view, first view by a person (not a scanner)
    viewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    human_viewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounce_type: Mapped[str | None] = mapped_column(String(8))  # hard | soft
    complained_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id", ondelete="SET NULL"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL")
    )

    events: Mapped[list[Event]] = relationship(
        back_populates="message", order_by="Event.id", cascade="all, delete-orphan"
    )


class Event(TenantMixin, TimestampMixin, db.Model):
    """Something that happened to a message: queued, sent, retry scheduled, failed, ..."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_org_created", "org_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSONB, default=dict)
    provider_event_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    machine: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    machine_reason: Mapped[str | None] = mapped_column(String(40))
    first: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    first_human: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")

    message: Mapped[Message] = relationship(back_populates="events")
