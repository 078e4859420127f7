"""Jobs (positions), candidates, and CSV imports of candidates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.extensions import db
from app.models.mixins import TenantMixin, TimestampMixin


class Job(TenantMixin, TimestampMixin, db.Model):
    """A position candidates interview for; its fields are usable in templates as job.*."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(120))
    location: Mapped[str | None] = mapped_column(String(200))
    interview_format: Mapped[str] = mapped_column(String(80), default="Video call")
    duration_minutes: Mapped[int] = mapped_column(Integer, default=45)
    hiring_manager: Mapped[str | None] = mapped_column(String(120))
    custom: Mapped[dict] = mapped_column(JSONB, default=dict)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Candidate(TenantMixin, TimestampMixin, db.Model):
    """A person who may be invited; one per email address in an organization."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(120), default="")
    last_name: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    custom: Mapped[dict] = mapped_column(JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.email


class CandidateImport(TenantMixin, TimestampMixin, db.Model):
    """One CSV upload: mapped by the user, imported in the background, with per-row problems."""

    __tablename__ = "candidate_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    encoding: Mapped[str] = mapped_column(String(20))
    delimiter: Mapped[str] = mapped_column(String(2))
    header: Mapped[list] = mapped_column(JSONB, default=list)
    mapping: Mapped[dict] = mapped_column(JSONB, default=dict)
    on_duplicate: Mapped[str] = mapped_column(String(8), default="skip")
    status: Mapped[str] = mapped_column(String(16), default="uploaded")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CandidateImportChunk(TenantMixin, db.Model):
    """About 1 MB of an uploaded file, in order: any worker host streams the upload from here,
    and no one reads it whole. Deleted once the import is done, or a day after an abandoned one."""

    __tablename__ = "candidate_import_chunks"
    __table_args__ = (UniqueConstraint("import_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("candidate_imports.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CandidateImportAddress(db.Model):
    """An address a running import has read and the line it was first on, so that a later row
    with it is reported as a duplicate without the worker holding every address (a 50 MB file
    has ~600,000). Scratch data, written ~2,000 rows at a time: unlogged (no WAL, no replica),
    and without foreign keys or org_id, whose checks per row cost as much as the insert itself
    (no one reads these rows but the import). Deleted with the import's file, and any left
    behind by the hourly housekeeping (app/candidates/uploads.py)."""

    __tablename__ = "candidate_import_addresses"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    import_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    line: Mapped[int] = mapped_column(Integer)


class CandidateImportProblem(TenantMixin, db.Model):
    """A row that was not imported: its line number, why, and what it said."""

    __tablename__ = "candidate_import_problems"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    import_id: Mapped[int] = mapped_column(
        ForeignKey("candidate_imports.id", ondelete="CASCADE"), index=True
    )
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))
    raw: Mapped[list] = mapped_column(JSONB, default=list)
