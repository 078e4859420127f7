"""Organizations (tenants), memberships with roles, and pending teammate invites."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.mixins import TenantMixin, TimestampMixin


class Role(StrEnum):
    """Roles, weakest first: each role can do everything the ones before it can."""

    VIEWER = "viewer"
    RECRUITER = "recruiter"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank

    @property
    def label(self) -> str:
        return self.value.capitalize()


ROLE_HELP = {
    Role.VIEWER: "sees campaigns, candidates and results",
    Role.RECRUITER: "also sends and schedules invitations",
    Role.ADMIN: "also manages templates, settings and teammates",
    Role.OWNER: "also manages owners; every organization keeps at least one",
}


class Organization(TimestampMixin, db.Model):
    """A tenant: a recruiting team with its own data, branding and settings."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Branding: used by the org's base email layout and as the sender of its mail
    logo_key: Mapped[str | None] = mapped_column(String(120))
    primary_color: Mapped[str] = mapped_column(String(7), default="#3A3FD8")
    accent_color: Mapped[str] = mapped_column(String(7), default="#F2F3FF")
    sender_name: Mapped[str | None] = mapped_column(String(120))
    sender_email: Mapped[str | None] = mapped_column(String(254))
    reply_to: Mapped[str | None] = mapped_column(String(254))
    footer_text: Mapped[str | None] = mapped_column(String(500))
    postal_address: Mapped[str | None] = mapped_column(String(300))
    # Sending: throttle, invitation lifetime, per-candidate cap, reminder offsets (minutes)
    send_rate_per_minute: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    invitation_ttl_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")
    candidate_daily_cap: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    reminder_offsets: Mapped[list] = mapped_column(
        JSONB, default=lambda: [1440, 120], server_default="[1440, 120]"
    )
    reminders_business_hours: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="false"
    )
    # Business hours (days 0 = Monday; minutes after local midnight) that reminders keep to
    business_days: Mapped[list] = mapped_column(
        JSONB, default=lambda: [0, 1, 2, 3, 4], server_default="[0, 1, 2, 3, 4]"
    )
    business_start_minute: Mapped[int] = mapped_column(Integer, default=540, server_default="540")
    business_end_minute: Mapped[int] = mapped_column(Integer, default=1020, server_default="1020")
    # candidates may reschedule or cancel a booking until this many hours before it starts
    reschedule_cutoff_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    max_retries: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # DKIM for mail Herald sends over SMTP itself: the private key only Fernet-encrypted
    dkim_selector: Mapped[str | None] = mapped_column(String(63))
    dkim_key_encrypted: Mapped[str | None] = mapped_column(Text)
    dkim_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    dkim_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dkim_check_message: Mapped[str | None] = mapped_column(String(300))
    # Tracking and provider events
    tracking_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    # events (timelines) older than this are deleted; 0 keeps them; the dashboard keeps its counts
    event_retention_days: Mapped[int] = mapped_column(Integer, default=365, server_default="365")
    events_purged_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_id: Mapped[str] = mapped_column(
        String(40), unique=True, default=lambda: secrets.token_urlsafe(18)
    )
    mailgun_signing_key_encrypted: Mapped[str | None] = mapped_column(Text)
    soft_bounce_threshold: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    soft_bounce_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")

    @property
    def sending_domain(self) -> str | None:
        """The domain of the org's sender address (Message-ID, List-Id, DKIM d=)."""
        return self.sender_email.rpartition("@")[2].lower() if self.sender_email else None

    memberships: Mapped[list[Membership]] = relationship(back_populates="org")


class Membership(TenantMixin, TimestampMixin, db.Model):
    """A user's place in an organization, with a role."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))

    org: Mapped[Organization] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")  # noqa: F821

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class TeamInvite(TenantMixin, TimestampMixin, db.Model):
    """An emailed invitation to join an organization; the link is signed, expiring, single-use."""

    __tablename__ = "team_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    nonce: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    org: Mapped[Organization] = relationship()
    invited_by: Mapped[User | None] = relationship()  # noqa: F821

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None
