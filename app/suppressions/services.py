"""Adding and removing suppressions (audited when a teammate does it), CSV in and out."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert

from app import clock
from app.audit import audit
from app.csvsafe import neutralise
from app.extensions import db
from app.like import ESCAPE, contains
from app.models import Suppression, User
from app.suppressions.rules import REASONS, SCOPES, normalise
from app.tenancy import ALL_ORGS

MAX_IMPORT_ROWS = 100_000
# the reason shown is the strongest one recorded for the address
STRENGTH = {"unsubscribed": 1, "soft_bounce": 2, "manual": 3, "hard_bounce": 4, "complaint": 5}


class SuppressionError(Exception):
    """Input that cannot become a suppression, with what to fix."""


def valid_address(raw: str) -> str:
    email = normalise(raw)
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SuppressionError(f"“{raw.strip()[:80]}” is not an email address.") from exc
    return email


def _merge(old: list[str], new: list[str]) -> list[str]:
    if "all" in old or "all" in new:
        return ["all"]
    return sorted(set(old) | set(new))


def suppress(
    org_id: int,
    email: str,
    reason: str,
    scope: list[str] | None = None,
    *,
    source: str | None = None,
    note: str | None = None,
    user: User | None = None,
) -> Suppression:
    """Add or widen a suppression in the current transaction (race-safe: one row per address)."""
    email, scope = normalise(email), scope or ["all"]
    db.session.execute(
        insert(Suppression)
        .values(
            org_id=org_id,
            email=email,
            reason=reason,
            scope=scope,
            source=source,
            note=note,
            created_by_id=user.id if user else None,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=["org_id", "email"])
    )
    row = db.session.scalar(
        select(Suppression)
        .where(Suppression.org_id == org_id, Suppression.email == email)
        .with_for_update()
        .execution_options(populate_existing=True, **ALL_ORGS)
    )
    row.scope = _merge(row.scope or [], scope)
    if STRENGTH.get(reason, 0) > STRENGTH.get(row.reason, 0):
        row.reason, row.source = reason, source
    if note:
        row.note = note
    return row


def add(org_id: int, user: User, email: str, scope: str, note: str) -> Suppression:
    """A teammate adds an address by hand."""
    if scope not in SCOPES:
        raise SuppressionError("Choose what to stop: all email, invitations or reminders.")
    row = suppress(
        org_id, valid_address(email), "manual", [scope], source="manual", note=note[:300], user=user
    )
    audit(org_id, user, "suppression.added", scope=scope, suppression=row.id)
    return row


def remove(org_id: int, user: User, row: Suppression) -> None:
    audit(org_id, user, "suppression.removed", reason=row.reason, suppression=row.id)
    db.session.delete(row)


def resubscribe(org_id: int, email: str) -> bool:
    """The candidate opts back in: only their own unsubscribe is lifted, never a bounce,
    complaint or a teammate's entry."""
    row = db.session.scalar(
        select(Suppression)
        .where(Suppression.org_id == org_id, Suppression.email == normalise(email))
        .execution_options(**ALL_ORGS)
    )
    if row is None or row.reason != "unsubscribed":
        return False
    db.session.delete(row)
    return True


def search(org_id: int, q: str, limit: int = 100) -> list[Suppression]:
    query = select(Suppression).where(Suppression.org_id == org_id)
    if q:
        like = contains(q.strip().lower()[:100])
        query = query.where(
            or_(
                Suppression.email.like(like, escape=ESCAPE),
                Suppression.note.ilike(like, escape=ESCAPE),
            )
        )
    return db.session.scalars(query.order_by(Suppression.id.desc()).limit(limit)).all()


@dataclass
class ImportReport:
    added: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


STRONG_REASONS = {"hard_bounce", "soft_bounce", "complaint"}  # only admins lift these


def import_csv(org_id: int, user: User, data: bytes, strong: bool = True) -> ImportReport:
    """Rows of email[,reason][,scope]; a header row is optional. Bad lines are reported by
    number and the good ones still import. Without `strong` (a recruiter's import), bounces
    and complaints are refused: only admins can remove those, so only admins import them."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SuppressionError("Save the file as UTF-8 CSV and try again.") from exc
    report = ImportReport()
    reader = csv.reader(io.StringIO(text))
    line = 0
    while True:
        line += 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. an unclosed quote swallowing the rest of the file
            report.problems.append((line, f"This line could not be read as CSV ({exc})."))
            break
        if line > MAX_IMPORT_ROWS:
            report.problems.append((line, f"Only {MAX_IMPORT_ROWS:,} rows at a time."))
            break
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row[0]) > 320:
            report.problems.append((line, "The address is too long."))
            continue
        if line == 1 and row and "@" not in row[0]:
            continue  # a header row
        reason = (row[1].strip().lower() if len(row) > 1 else "") or "manual"
        scope = (row[2].strip().lower() if len(row) > 2 else "") or "all"
        try:
            email = valid_address(row[0])
            if reason not in REASONS:
                raise SuppressionError(f"Unknown reason “{reason[:40]}”.")
            if reason in STRONG_REASONS and not strong:
                raise SuppressionError(
                    f"Only admins import a {REASONS[reason].lower()}; use manual instead."
                )
            if scope not in SCOPES:
                raise SuppressionError(f"Unknown scope “{scope[:40]}”.")
        except SuppressionError as exc:
            report.problems.append((line, str(exc)))
            continue
        suppress(org_id, email, reason, [scope], source="csv import", user=user)
        report.added += 1
    if not report.added and not report.problems:
        raise SuppressionError("The file has no addresses: one address per line, please.")
    audit(org_id, user, "suppression.imported", added=report.added, problems=len(report.problems))
    return report


def export_csv(org_id: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "reason", "scope", "source", "note", "added_at"])
    rows = db.session.scalars(
        select(Suppression).where(Suppression.org_id == org_id).order_by(Suppression.id)
    )
    for row in rows:
        writer.writerow(
            [
                neutralise(row.email),
                row.reason,
                " ".join(row.scope or []),
                neutralise(row.source or ""),
                neutralise(row.note or ""),
                row.created_at.isoformat(),
            ]
        )
    return out.getvalue()
