"""People who log in, and their sessions. A user can belong to several organizations through
memberships; each browser they log in from holds one session row."""

from __future__ import annotations

import hashlib
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.mixins import TimestampMixin


class User(UserMixin, TimestampMixin, db.Model):
    """A login. Email is stored lower-cased and is unique across Herald."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    memberships: Mapped[list[Membership]] = relationship(  # noqa: F821
        back_populates="user", cascade="all, delete-orphan"
    )

    # The session token this object was loaded through (app/sessions.py sets it): not a column.
    session_id = None

    def get_id(self) -> str:
        """What flask-login keeps in the cookie: the token of a UserSession row, never the user
        id, so ending the row (log out, password change) ends the cookie for good."""
        if not self.session_id:
            raise LookupError("No session: log in through app.sessions.begin().")
        return self.session_id

    @property
    def credential_fingerprint(self) -> str:
        """Changes with the password: a password reset link naming it works only once."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


class UserSession(db.Model):
    """One logged-in browser. The cookie carries a random token; the row is keyed by its SHA-256,
    so a database reader cannot forge a session. Live while revoked_at is empty and the browser
    was seen within SESSION_IDLE_SECONDS."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
