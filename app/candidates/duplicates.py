"""Rows of an import file that repeat an address an earlier row of the same file had. PostgreSQL
remembers the addresses read so far (candidate_import_addresses, one row per distinct address with
the line it was first on), so the worker's memory does not grow with the file: a dict of the
~600,000 addresses of a 50 MB file and their lines cost it ~80 MB. Services: they never commit."""

from __future__ import annotations

from sqlalchemy import Integer, String, any_, bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.extensions import db
from app.models import CandidateImport, CandidateImportAddress


def earlier_lines(item: CandidateImport, rows: list[tuple[int, str]]) -> dict[int, int]:
    """Record the next rows' addresses ((line, address) in file order) as read by the import;
    for each row whose address a row before it had, {its line: the first such row's line}."""
    first: dict[str, int] = {}
    for line, email in rows:
        first.setdefault(email, line)
    if not first:
        return {}
    read = (
        func.unnest(
            bindparam("emails", list(first), ARRAY(String)),
            bindparam("lines", list(first.values()), ARRAY(Integer)),
        )
        .table_valued("email", "line")
        .render_derived(name="read")
    )
    new = set(
        db.session.scalars(
            pg_insert(CandidateImportAddress)
            .from_select(
                ["import_id", "email", "line"],
                select(literal(item.id), read.c.email, read.c.line),
            )
            .on_conflict_do_nothing()
            .returning(CandidateImportAddress.email)
        )
    )
    seen_before = [email for email in first if email not in new]
    if seen_before:
        first.update(
            db.session.execute(
                select(CandidateImportAddress.email, CandidateImportAddress.line).where(
                    CandidateImportAddress.import_id == item.id,
                    CandidateImportAddress.email
                    == any_(bindparam("seen", seen_before, ARRAY(String))),
                )
            )
            .tuples()
            .all()
        )
    return {line: first[email] for line, email in rows if first[email] != line}
