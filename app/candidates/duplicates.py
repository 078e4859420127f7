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

ADDRESSES = CandidateImportAddress.__table__  # Core: ORM-enabled inserts take rows, not SQL


def earlier_lines(item: CandidateImport, rows: list[tuple[int, str]]) -> dict[int, int]:
    """Record the next rows' addresses ((line, address) in file order) as read by the import;
    for each row whose address a row before it had, {its line: the first such row's line}.
    Values go as parameters of the execution, not bound into the statements: SQLAlchemy's cache
    keeps the first statement it compiled for the life of the worker."""
    first: dict[str, int] = {}
    for line, email in rows:
        first.setdefault(email, line)
    if not first:
        return {}
    read = (
        func.unnest(
            bindparam("emails", type_=ARRAY(String)),
            bindparam("lines", type_=ARRAY(Integer)),
        )
        .table_valued("email", "line")
        .render_derived(name="read")
    )
    new = set(
        db.session.scalars(
            pg_insert(ADDRESSES)
            .from_select(["import_id", "email", "line"], select(literal(item.id), *read.c))
            .on_conflict_do_nothing()
            .returning(ADDRESSES.c.email),
            {"emails": list(first), "lines": list(first.values())},
        )
    )
    seen_before = [email for email in first if email not in new]
    if seen_before:
        earlier = select(ADDRESSES.c.email, ADDRESSES.c.line).where(
            ADDRESSES.c.import_id == item.id,
            ADDRESSES.c.email == any_(bindparam("seen", type_=ARRAY(String))),
        )
        first.update(db.session.execute(earlier, {"seen": seen_before}).tuples().all())
    return {line: first[email] for line, email in rows if first[email] != line}
