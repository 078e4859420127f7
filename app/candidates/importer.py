"""CSV import of candidates: detect the encoding (UTF-8 with or without BOM, Windows-1252,
Latin-1) and the delimiter (comma, semicolon, tab), guess the column mapping, then import in the
background with progress, reporting each bad row with its line number and reason while the good
rows import. The file is streamed from its stored chunks (app/candidates/uploads.py) through
app/candidates/reading.py, never read whole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import Text, bindparam, column, func, insert, literal, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import clock
from app.candidates import duplicates, uploads
from app.candidates.reading import ENCODINGS, Limits, Problem, lines, records
from app.extensions import db
from app.models import Candidate, CandidateImport, CandidateImportProblem

BATCH = 2000
BATCH_CHARS = 4_000_000  # or fewer rows, when they are long: what a batch may hold in memory
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
_COLUMNS = {  # a checked record's keys that are written, with their SQL types
    "email": Text,
    "first_name": Text,
    "last_name": Text,
    "phone": Text,
    "timezone": Text,
    "tags": ARRAY(Text),
    "custom": JSONB,
}


class ImportFileError(Exception):
    """The file cannot be imported at all (not CSV, empty, too large, no email column)."""


@dataclass
class Parsed:
    """A stored file: how it was read, its header and first rows."""

    encoding: str
    delimiter: str
    header: list[str]
    preview: list[list[str]]


def limits() -> Limits:
    """The line, cell and quoted-cell limits from the settings."""
    config = current_app.config
    return Limits(
        config["IMPORT_MAX_LINE_BYTES"],
        config["IMPORT_MAX_CELL_CHARS"],
        config["IMPORT_MAX_RECORD_LINES"],
    )


def encoding_label(encoding: str) -> str:
    """How the UI names an encoding ('Windows-1252')."""
    return ENCODINGS.get(encoding, encoding)


def receive(item: CandidateImport, stream: BinaryIO) -> Parsed:
    """Store an upload (the item has an id) as it streams in, judge it, read its header and
    first rows, and set what was learned on the item. ImportFileError: the caller rolls back."""
    most = current_app.config["IMPORT_MAX_BYTES"]
    sniff = uploads.store(item, stream, most)
    if not sniff.has_text:
        raise ImportFileError("The file is empty.")
    if sniff.size > most:
        raise ImportFileError(f"The file is over {most // (1024 * 1024)} MB. Split it.")
    if sniff.binary:
        raise ImportFileError("This file is not a CSV (it contains binary data).")
    parsed = parse(item.id, sniff.encoding())
    item.encoding, item.delimiter, item.header = parsed.encoding, parsed.delimiter, parsed.header
    item.mapping = guess_mapping(parsed.header)
    return parsed


def parse(import_id: int, encoding: str) -> Parsed:
    """Detect the delimiter from the header line, read the header and up to five rows (blank
    lines, however many, are skipped on the way)."""
    numbered = lines(uploads.pieces(import_id), encoding, limits().line_bytes)
    first = next(numbered, None)
    if first is None:
        raise ImportFileError("The file is empty.")
    if first[1] is None:
        raise ImportFileError("The first line is over 100 KB: it should name the columns.")
    delimiter = max((",", ";", "\t"), key=first[1].count)
    rows = records(chain([first], numbered), delimiter, limits())
    _, header = next(rows)
    if isinstance(header, Problem):
        raise ImportFileError(f"The first line, naming the columns, was not read. {header.reason}")
    preview = [
        cells if isinstance(cells, list) else [f"(line {line} not read: {cells.reason})"]
        for line, cells in (next(rows, (0, None)) for _ in range(5))
        if cells is not None
    ]
    if not preview:
        raise ImportFileError(
            "This file names its columns but has no candidates under them: one row per "
            "candidate goes below the first line."
        )
    return Parsed(encoding, delimiter, [h.strip() for h in header], preview)


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


def rows(item: CandidateImport) -> Iterator[tuple[int, list[str] | Problem]]:
    """(line number, cells or why not read) of every data row, streamed from the stored file."""
    numbered = lines(uploads.pieces(item.id), item.encoding, limits().line_bytes)
    read = records(numbered, item.delimiter, limits())
    next(read, None)  # the header
    return read


def run(item: CandidateImport) -> Iterator[None]:
    """Import every good row in batches; bad rows become problems. Yields when the import has
    started, after each batch and at the end: the job commits there, so the progress shows
    while it runs. The stored file is deleted at the end."""
    item.total_rows = sum(1 for _ in rows(item))
    item.status, item.processed = "running", 0
    yield
    batch: list[tuple[int, dict, list[str]]] = []
    problems: list[dict] = []
    held = 0
    for line, cells in rows(item):
        if isinstance(cells, Problem):
            reason, raw = cells.reason, cells.raw
        else:
            record, raw = _record(cells, item.mapping), cells
            reason = _check(record)
        if reason:
            problems.append(_problem(item, line, reason, raw))
        else:
            batch.append((line, record, raw))
        item.processed += 1
        held += sum(map(len, raw))
        if len(batch) >= BATCH or len(problems) >= BATCH or held >= BATCH_CHARS:
            _flush(item, batch, problems)
            yield
            held = 0
    _flush(item, batch, problems)
    yield
    uploads.discard(item.id)
    item.status, item.finished_at = "done", clock.now()
    yield


def _problem(item: CandidateImport, line: int, reason: str, raw: list[str]) -> dict:
    """A row that was not imported, as stored for the report."""
    return {
        "org_id": item.org_id,
        "import_id": item.id,
        "line": line,
        "reason": reason[:300],
        "raw": raw[:50],
    }


def _flush(item: CandidateImport, batch: list[tuple[int, dict, list[str]]], problems: list) -> None:
    """Report the batch's rows that repeat an earlier row's address, write the others and store
    the problems."""
    earlier = duplicates.earlier_lines(item, [(line, record["email"]) for line, record, _ in batch])
    for line, _, raw in batch:
        if line in earlier:
            problems.append(
                _problem(item, line, f"Duplicate of line {earlier[line]} in this file.", raw)
            )
    if len(earlier) < len(batch):
        _write(item, [record for line, record, _ in batch if line not in earlier])
    if problems:
        room = MAX_PROBLEMS - item.failed
        if room > 0:
            db.session.execute(insert(CandidateImportProblem), problems[:room])
        item.failed += len(problems)
    batch.clear()
    problems.clear()


def _write(item: CandidateImport, records: list[dict]) -> None:
    """Insert the candidates (or update those the org has, when asked) in one statement, the
    rows sent as one JSON array; PostgreSQL's answer counts imported / updated / skipped, so
    existing candidates are never looked up first."""
    now, table = clock.now(), Candidate.__table__  # Core: ORM-enabled inserts take rows, not SQL
    read = (
        func.jsonb_to_recordset(bindparam("records", type_=JSONB))
        .table_valued(*(column(name, type_) for name, type_ in _COLUMNS.items()))
        .render_derived(name="record", with_types=True)
    )
    statement = pg_insert(table).from_select(
        ["org_id", *_COLUMNS, "created_at", "updated_at"],
        select(literal(item.org_id), *read.c, literal(now), literal(now)),
    )
    if item.on_duplicate == "update":
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["org_id", "email"],
            set_={
                "first_name": excluded.first_name,
                "last_name": excluded.last_name,
                "phone": func.coalesce(excluded.phone, table.c.phone),
                "timezone": func.coalesce(excluded.timezone, table.c.timezone),
                "tags": excluded.tags,
                "custom": table.c.custom.op("||")(excluded.custom),
                "updated_at": now,
            },
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["org_id", "email"])
    # xmax is 0 on a row this statement inserted, not on one it updated; a skipped row returns
    # nothing. The rows go as a parameter of the execution, not bound into the statement:
    # SQLAlchemy's cache keeps the first statement it compiled for the life of the worker.
    statement = statement.returning(literal_column("xmax = 0"))
    answers = db.session.scalars(statement, {"records": records}).all()
    inserted = sum(answers)
    item.imported += inserted
    if item.on_duplicate == "update":
        item.updated += len(records) - inserted
    else:
        item.skipped += len(records) - inserted
