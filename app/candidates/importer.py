"""CSV import of candidates: decode (UTF-8 with or without BOM, else Latin-1), detect the
delimiter (comma, semicolon, tab), guess the column mapping, then import in the background with
progress, reporting each bad row with its line number and reason while the good rows import."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import clock
from app.extensions import db
from app.models import Candidate, CandidateImport, CandidateImportProblem

MAX_BYTES = 50 * 1024 * 1024
BATCH = 2000
MAX_PROBLEMS = 100_000
FIELDS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split into first and last)",
    "phone": "Phone",
    "timezone": "Time zone",
    "tags": "Tags",
}
_GUESSES = {
    "email": {"email", "e-mail", "mail", "email address", "e-mail address"},
    "first_name": {"first name", "firstname", "given name", "first", "prénom", "prenom"},
    "last_name": {"last name", "lastname", "surname", "family name", "last", "nom"},
    "full_name": {"name", "full name", "candidate", "candidate name"},
    "phone": {"phone", "mobile", "telephone", "tel", "phone number"},
    "timezone": {"timezone", "time zone", "tz"},
    "tags": {"tags", "tag", "labels"},
}
_ZONES = available_timezones()


class ImportFileError(Exception):
    """The file cannot be imported at all (not CSV, empty, too large, no email column)."""


@dataclass
class Parsed:
    """A decoded file: how it was read, its header and first rows."""

    text: str
    encoding: str
    delimiter: str
    header: list[str]
    preview: list[list[str]]


def decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (BOM or not), else Latin-1; refuse binary files."""
    if not data.strip():
        raise ImportFileError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"The file is over {MAX_BYTES // (1024 * 1024)} MB. Split it.")
    if b"\x00" in data[:65536]:
        raise ImportFileError("This file is not a CSV (it contains binary data).")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def parse(data: bytes) -> Parsed:
    """Decode, detect the delimiter from the header line, read the header and five rows."""
    text, encoding = decode(data)
    first = text.splitlines()[0] if text.splitlines() else ""
    delimiter = max((",", ";", "\t"), key=first.count)
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(rows)]
        preview = [row for _, row in zip(range(5), rows, strict=False)]
        filled = any(any(c.strip() for c in row) for row in preview) or any(
            any(c.strip() for c in row) for row in rows
        )
    except csv.Error as exc:
        raise ImportFileError(f"This file could not be read as CSV: {exc}.") from exc
    if not any(header):
        raise ImportFileError("The first line should name the columns, but it is empty.")
    if not filled:
        raise ImportFileError(
            "This file names its columns but has no candidates under them: one row per "
            "candidate goes below the first line."
        )
    return Parsed(text, encoding, delimiter, header, preview)


def field_name(name: str) -> str:
    """A custom field's name as templates use it (candidate.custom.<name>): 'Portfolio URL' →
    'portfolio_url', at most 40 characters."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")[:40] or "field"


def normalised_email(email: str) -> str:
    """The address as Herald stores it (validated, lower-cased); EmailNotValidError says why not."""
    return validate_email(
        email, check_deliverability=False, allow_smtputf8=False
    ).normalized.lower()


def guess_mapping(header: list[str]) -> dict[str, str]:
    """Column index → field ('email', 'custom:<name>', or 'ignore') from the header names."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for index, name in enumerate(header):
        key = name.strip().lower().replace("_", " ")
        field = next((f for f, names in _GUESSES.items() if key in names and f not in taken), None)
        if field:
            taken.add(field)
        mapping[str(index)] = field or (f"custom:{field_name(name)}" if name.strip() else "ignore")
    return mapping


def neutralise(cell: str) -> str:
    """Cells that spreadsheets would run as formulas get a leading apostrophe on export."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _record(row: list[str], mapping: dict[str, str]) -> dict:
    record: dict = {"custom": {}, "tags": []}
    for index, field in mapping.items():
        value = row[int(index)].strip() if int(index) < len(row) else ""
        if field == "ignore" or not value:
            continue
        if field.startswith("custom:"):
            record["custom"][field[7:]] = value[:1000]
        elif field == "tags":
            record["tags"] = [t.strip()[:40] for t in re.split(r"[;|,]", value) if t.strip()]
        elif field == "full_name":
            first, _, last = value.partition(" ")
            record.setdefault("first_name", first[:120])
            record.setdefault("last_name", last.strip()[:120])
        else:
            record[field] = value
    return record


def _check(record: dict) -> str | None:
    """Why this record cannot be imported, or None. Normalises email and lengths in place."""
    email = record.get("email")
    if not email:
        return "No email address."
    try:
        record["email"] = normalised_email(email)
    except EmailNotValidError as exc:
        return f"Invalid email address: {exc}"
    zone = record.get("timezone")
    if zone and zone not in _ZONES:
        return f"Unknown time zone {zone[:60]!r} (use names like Europe/Paris)."
    record["first_name"] = record.get("first_name", "")[:120]
    record["last_name"] = record.get("last_name", "")[:120]
    if record.get("phone"):
        record["phone"] = record["phone"][:40]
    return None


def rows(item: CandidateImport, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every data row; the header is line 1."""
    reader = csv.reader(io.StringIO(text), delimiter=item.delimiter)
    next(reader, None)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, [f"<unreadable: {exc}>"]
            continue
        if any(cell.strip() for cell in row):
            yield reader.line_num, row


def run(item: CandidateImport) -> None:
    """Import every good row in batches, committing progress; bad rows become problems."""
    text, _ = decode(item.data)
    existing = set(
        db.session.scalars(select(Candidate.email).where(Candidate.org_id == item.org_id))
    )
    item.total_rows = sum(1 for _ in rows(item, text))
    item.status, item.processed = "running", 0
    db.session.commit()
    seen: dict[str, int] = {}
    batch, problems = [], []
    for line, row in rows(item, text):
        record = _record(row, item.mapping)
        reason = _check(record) if not row[0].startswith("<unreadable") else row[0][1:-1]
        if reason is None and record["email"] in seen:
            reason = f"Duplicate of line {seen[record['email']]} in this file."
        if reason:
            problems.append(
                {
                    "org_id": item.org_id,
                    "import_id": item.id,
                    "line": line,
                    "reason": reason[:300],
                    "raw": row[:50],
                }
            )
        else:
            seen[record["email"]] = line
            if record["email"] in existing and item.on_duplicate != "update":
                item.skipped += 1
            else:
                item.updated += record["email"] in existing
                item.imported += record["email"] not in existing
                batch.append(record)
        item.processed += 1
        if len(batch) >= BATCH or len(problems) >= BATCH:
            _flush(item, batch, problems)
    _flush(item, batch, problems)
    item.status, item.finished_at = "done", clock.now()
    db.session.commit()


def _flush(item: CandidateImport, batch: list[dict], problems: list[dict]) -> None:
    now = clock.now()
    if batch:
        values = [
            {
                "org_id": item.org_id,
                "email": r["email"],
                "first_name": r["first_name"],
                "last_name": r["last_name"],
                "phone": r.get("phone"),
                "timezone": r.get("timezone"),
                "tags": r["tags"],
                "custom": r["custom"],
                "created_at": now,
                "updated_at": now,
            }
            for r in batch
        ]
        statement = pg_insert(Candidate)  # executemany: SQLAlchemy batches the VALUES
        if item.on_duplicate == "update":
            excluded = statement.excluded
            statement = statement.on_conflict_do_update(
                index_elements=["org_id", "email"],
                set_={
                    "first_name": excluded.first_name,
                    "last_name": excluded.last_name,
                    "phone": func.coalesce(excluded.phone, Candidate.phone),
                    "timezone": func.coalesce(excluded.timezone, Candidate.timezone),
                    "tags": excluded.tags,
                    "custom": Candidate.custom.op("||")(excluded.custom),
                    "updated_at": now,
                },
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["org_id", "email"])
        db.session.execute(statement, values)
    if problems:
        room = MAX_PROBLEMS - item.failed
        if room > 0:
            db.session.execute(insert(CandidateImportProblem), problems[:room])
        item.failed += len(problems)
    batch.clear()
    problems.clear()
    db.session.commit()
