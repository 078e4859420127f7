"""Interview slots a campaign offers, their interviewers, and candidates' bookings of them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.mixins import TenantMixin, TimestampMixin


class SlotStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class BookingStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    MOVED = "moved"


class InterviewSlot(TenantMixin, TimestampMixin, db.Model):
    """A time candidates can book, up to `capacity` of them; `booked` is the database's own
    counter, raised only by a guarded UPDATE (`booked < capacity`), so it never overfills."""

    __tablename__ = "interview_slots"
    __table_args__ = (
        CheckConstraint("capacity >= 1", name="ck_interview_slots_capacity"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_interview_slots_booked"),
        Index("ix_interview_slots_campaign_starts", "campaign_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    capacity: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    booked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    location: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default=SlotStatus.OPEN, server_default="open")

    campaign = relationship("Campaign")
    interviewers: Mapped[list[SlotInterviewer]] = relationship(
        back_populates="slot", cascade="all, delete-orphan", passive_deletes=True
    )


class SlotInterviewer(TenantMixin, db.Model):
    """Who interviews in a slot: a teammate (user_id) or a person outside Herald (name, email)."""

    __tablename__ = "slot_interviewers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    slot_id: Mapped[int] = mapped_column(
        ForeignKey("interview_slots.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))

    slot: Mapped[InterviewSlot] = relationship(back_populates="interviewers")


class Booking(TenantMixin, TimestampMixin, db.Model):
    """A candidate's place in a slot. At most one active booking per candidate and campaign
    (a partial unique index). A reschedule marks the row 'moved' and a new active row carries
    the same `uid` with `sequence` + 1, so the candidate's calendar updates one entry."""

    __tablename__ = "bookings"
    __table_args__ = (
        Index(
            "uq_bookings_active_candidate",
            "campaign_id",
            "candidate_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    # no cascade: a slot with bookings is closed or cancelled, not deleted
    slot_id: Mapped[int] = mapped_column(ForeignKey("interview_slots.id"), index=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), index=True
    )
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(
        String(16), default=BookingStatus.ACTIVE, server_default="active"
    )
    time_zone: Mapped[str] = mapped_column(String(64))
    uid: Mapped[str] = mapped_column(String(120), index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attended: Mapped[str | None] = mapped_column(String(16))  # 'attended' | 'no_show'

    slot: Mapped[InterviewSlot] = relationship()
    invitation = relationship("Invitation")
    candidate = relationship("Candidate")
