"""An import's uploaded file, kept in PostgreSQL as ~1 MB chunks so that any worker host can
stream it and no process holds it whole; deleted when the import is done, or after a day unfinished,
with the addresses the import read from it (app/candidates/duplicates.py). Services: they never
commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import BinaryIO

from sqlalchemy import delete, func, insert, select, update

from app import clock
from app.candidates.reading import Sniff
from app.extensions import db
from app.models import CandidateImport, CandidateImportAddress, CandidateImportChunk

CHUNK_BYTES = 1024 * 1024
UNFINISHED = ("uploaded", "queued", "running")


def store(item: CandidateImport, stream: BinaryIO, limit: int) -> Sniff:
    """Copy the stream into chunks, a piece at a time, stopping after `limit` bytes; what was
    learned on the way (size, binary, encoding) comes back for the caller to judge."""
    sniff, seq = Sniff(), 0
    while sniff.size <= limit and (piece := stream.read(CHUNK_BYTES)):
        sniff.feed(piece)
        db.session.execute(
            insert(CandidateImportChunk),
            {"org_id": item.org_id, "import_id": item.id, "seq": seq, "data": piece},
        )
        seq += 1
    return sniff


def pieces(import_id: int) -> Iterator[bytes]:
    """The stored file in order, one chunk in memory at a time."""
    seq = 0
    while True:
        data = db.session.scalar(
            select(CandidateImportChunk.data).where(
                CandidateImportChunk.import_id == import_id, CandidateImportChunk.seq == seq
            )
        )
        if data is None:
            return
        yield data
        seq += 1


def discard(import_id: int) -> None:
    """Delete an import's stored file and the addresses read from it (it is done with them)."""
    for table in (CandidateImportChunk, CandidateImportAddress):
        db.session.execute(delete(table).where(table.import_id == import_id))


def discard_stale(keep_seconds: int) -> int:
    """Close imports left unfinished longer than `keep_seconds` (abandoned at the mapping step:
    'expired'; queued or running that long after the mapping was confirmed: 'failed') and
    delete their files, and any file a finished import still has, with the addresses read from
    it. How many imports lost their file."""
    cutoff = clock.now() - timedelta(seconds=keep_seconds)
    db.session.execute(
        update(CandidateImport)
        .where(
            CandidateImport.status.in_(("queued", "running")),
            func.coalesce(CandidateImport.queued_at, CandidateImport.created_at) < cutoff,
        )
        .values(
            status="failed",
            finished_at=clock.now(),
            error="The import did not finish within a day, so its file was deleted. "
            "Upload it again.",
        )
    )
    db.session.execute(
        update(CandidateImport)
        .where(CandidateImport.status == "uploaded", CandidateImport.created_at < cutoff)
        .values(status="expired", finished_at=clock.now())
    )
    unfinished = select(CandidateImport.id).where(CandidateImport.status.in_(UNFINISHED))
    db.session.execute(  # also those of a deleted import: the table has no foreign key
        delete(CandidateImportAddress).where(CandidateImportAddress.import_id.not_in(unfinished))
    )
    done = select(CandidateImport.id).where(CandidateImport.status.not_in(UNFINISHED))
    result = db.session.execute(
        delete(CandidateImportChunk)
        .where(CandidateImportChunk.import_id.in_(done))
        .returning(CandidateImportChunk.import_id)
    )
    return len(set(result.scalars()))
