"""CSV import of candidates at its edges: files near the 50 MB limit stay within ~50 MB of memory,
an unbalanced quote costs one line, Windows-1252 is recognised and said, and the stored file is
deleted once it is no longer needed."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from app import clock
from app.candidates import duplicates, uploads
from app.extensions import db
from app.models import (
    Candidate,
    CandidateImport,
    CandidateImportAddress,
    CandidateImportChunk,
    CandidateImportProblem,
    Role,
)
from app.queues import default_queue
from tests.test_candidates import _import, _upload

MB = 1024 * 1024
MEMORY_BUDGET = 50 * MB


@pytest.fixture
def recruiter(factories, login_as):
    org = factories.make_org("Acme")
    login_as(factories.make_user(org, Role.RECRUITER), org)
    return org


class Generated(io.RawIOBase):
    """A file made as it is read (head, `size` bytes of `fill`, tail), so the test itself does
    not hold the tens of megabytes it uploads."""

    def __init__(self, head: bytes, fill: bytes, size: int, tail: bytes = b"") -> None:
        self.block = fill * (MB // len(fill))
        self.head, self.left, self.tail, self.done_head = head, size, tail, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if not self.done_head:
            data, self.done_head = self.head, True
        elif self.left > 0:
            data = self.block[: min(len(buffer), self.left)]
            self.left -= len(data)
        else:
            data, self.tail = self.tail, b""
        data = data[: len(buffer)]
        buffer[: len(data)] = data
        return len(data)


def peak_memory(action: Callable[[], object]) -> tuple[object, int]:
    """What `action` returned and the most memory Python held above its start while it ran."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = action()
        return result, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def stored_chunks() -> int:
    return db.session.scalar(select(func.count()).select_from(CandidateImportChunk))


def addresses() -> int:
    """Addresses imports have read and not yet let go of."""
    return db.session.scalar(select(func.count()).select_from(CandidateImportAddress))


def test_45_mb_of_blank_lines_is_refused_without_holding_them(recruiter, post):
    upload = Generated(b"email,first name\n", b"\n", 45 * MB)
    response, peak = peak_memory(
        lambda: post(
            "/candidates/import",
            {"file": (io.BufferedReader(upload), "blank.csv")},
            content_type="multipart/form-data",
        )
    )
    assert response.status_code == 400
    assert "has no candidates under them" in response.text
    assert peak < MEMORY_BUDGET, f"{peak / MB:.0f} MB"
    assert stored_chunks() == 0  # a refused upload is not kept


def test_a_49_mb_cell_is_one_reported_row_and_the_others_import(
    recruiter, client, post, run_worker
):
    upload = Generated(
        b'email,first name,notes\nada@example.com,Ada,ok\nbob@example.com,Bob,"',
        b"x",
        49 * MB,
        b'"\ncy@example.com,Cy,ok\n',
    )
    response, peak = peak_memory(
        lambda: post(
            "/candidates/import",
            {"file": (io.BufferedReader(upload), "big.csv")},
            content_type="multipart/form-data",
        )
    )
    assert response.status_code == 302 and peak < MEMORY_BUDGET, f"{peak / MB:.0f} MB"
    url = response.location
    assert "ada@example.com" in client.get(url).text
    form = {"col-0": "email", "col-1": "first_name", "col-2": "custom:notes"}
    assert post(url, {**form, "on_duplicate": "skip"}).status_code == 302
    _, peak = peak_memory(run_worker)
    assert peak < MEMORY_BUDGET, f"{peak / MB:.0f} MB"
    page = client.get(f"{url}/progress").text
    assert "Imported big.csv" in page and "The line is over 100 KB" in page
    problem = db.session.scalars(select(CandidateImportProblem)).one()
    assert problem.line == 3
    emails = set(db.session.scalars(select(Candidate.email)))
    assert emails == {"ada@example.com", "cy@example.com"}


def test_an_unbalanced_quote_costs_its_line_only(recruiter, client, post, run_worker):
    after = "".join(f"p{n}@example.com,P{n},\n" for n in range(25))
    data = (
        'email,first name,notes\nada@example.com,Ada,"two\nlines"\nbob@example.com,"Bob,\n' + after
    ).encode()
    item = _import(post, client, run_worker, data)
    assert (item.status, item.total_rows, item.imported, item.failed) == ("done", 27, 26, 1)
    ada = db.session.scalars(select(Candidate).where(Candidate.email == "ada@example.com")).one()
    assert ada.custom == {"notes": "two\nlines"}  # a quoted cell may span lines
    assert db.session.scalar(select(func.count()).select_from(Candidate)) == 26
    page = client.get(f"/candidates/imports/{item.id}/progress").text
    assert "<td>4</td><td>A quote opened here is never closed" in page


def test_long_cells_are_reported_with_their_line(recruiter, client, post, run_worker):
    data = (
        "email,notes\n"
        f"ada@example.com,{'y' * 10_001}\n"
        "bob@example.com,fine\n"
        f"cy@example.com,{'z' * 120_000}\n"
    ).encode()
    item = _import(post, client, run_worker, data)
    assert (item.imported, item.failed) == (1, 2)
    problems = db.session.scalars(
        select(CandidateImportProblem).order_by(CandidateImportProblem.line)
    ).all()
    assert [(p.line, p.reason) for p in problems] == [
        (2, "A cell is over 10,000 characters."),
        (4, "The line is over 100 KB, so it was not read."),
    ]


def test_windows_1252_is_detected_and_said(recruiter, client, post, run_worker):
    data = "email;name\nzoe@example.com;Zoé “Zed” Durand €\n".encode("cp1252")
    response = _upload(post, data)
    assert "Read as Windows-1252, semicolon separated" in client.get(response.location).text
    item = _import(post, client, run_worker, data)
    zoe = db.session.scalars(select(Candidate)).one()
    assert (zoe.first_name, zoe.last_name) == ("Zoé", "“Zed” Durand €")
    assert "Read as Windows-1252" in client.get(f"/candidates/imports/{item.id}/progress").text


def test_the_file_is_deleted_once_imported(recruiter, client, post, run_worker):
    response = _upload(post, b"email\nada@example.com\n")
    post(response.location, {"col-0": "email", "on_duplicate": "skip"})
    assert stored_chunks() == 1  # queued: a worker on any host reads it from PostgreSQL
    run_worker()
    assert stored_chunks() == 0
    assert db.session.scalars(select(Candidate.email)).all() == ["ada@example.com"]


def test_an_abandoned_upload_is_deleted_after_a_day(app, recruiter, client, post, run_worker):
    frozen = clock.FrozenClock()
    clock.set_clock(frozen)
    url = _upload(post, b"email\nada@example.com\n").location
    keep = app.config["IMPORT_UPLOAD_KEEP_SECONDS"]
    frozen.advance(keep - 60)
    default_queue().enqueue("app.jobs.imports.discard_stale_uploads")
    run_worker()
    assert stored_chunks() == 1 and "Map the columns" in client.get(url).text
    frozen.advance(120)
    default_queue().enqueue("app.jobs.imports.discard_stale_uploads")
    run_worker()
    assert stored_chunks() == 0
    page = client.get(url, follow_redirects=True).text
    assert "was not imported within a day of its upload, so it was deleted" in page


def test_an_upload_mapped_late_in_its_day_still_imports(app, recruiter, client, post, run_worker):
    frozen = clock.FrozenClock()
    clock.set_clock(frozen)
    url = _upload(post, b"email\nada@example.com\n").location
    frozen.advance(app.config["IMPORT_UPLOAD_KEEP_SECONDS"] - 60)
    post(url, {"col-0": "email", "on_duplicate": "skip"})  # confirmed just before the day ends
    frozen.advance(120)
    uploads.discard_stale(app.config["IMPORT_UPLOAD_KEEP_SECONDS"])  # runs before the import
    db.session.commit()
    run_worker()
    page = client.get(url, follow_redirects=True).text
    assert "Imported" in page and "within a day" not in page
    assert stored_chunks() == 0


def _rows_with_repeats() -> tuple[bytes, list[tuple[int, str]]]:
    """5,000 rows (several import batches) whose addresses repeat earlier ones in the same
    batch and across batches, in other case; and the problems a user should see."""
    emails = {n: f"p{n}@example.com" for n in range(5000)}
    emails |= {10: "P3@Example.com", 2500: "p5@example.com", 3001: "p3000@example.com"}
    emails |= {4500: "p2600@example.com", 20: "zed@example.com", 4000: "zed@example.com"}
    emails |= {n: f"p{n - 4700}@example.com" for n in range(4800, 5000)}  # p100 … p299
    zones = {20: "Mars/Olympus"}  # a bad first row: the later zed@ is not its duplicate
    data = "email,first name,time zone\n" + "".join(
        f"{emails[n]},F{n},{zones.get(n, '')}\n" for n in range(5000)
    )
    earlier = {10: 3, 2500: 5, 3001: 3000, 4500: 2600} | {n: n - 4700 for n in range(4800, 5000)}
    problems = [
        (n + 2, f"Duplicate of line {first + 2} in this file.") for n, first in earlier.items()
    ]
    problems.append((22, "Unknown time zone 'Mars/Olympus' (use names like Europe/Paris)."))
    return data.encode(), sorted(problems)


@pytest.mark.parametrize("on_duplicate", ["skip", "update"])
def test_repeated_addresses_across_batches_are_reported_with_the_first_line(
    recruiter, client, post, run_worker, on_duplicate
):
    data, expected = _rows_with_repeats()
    if on_duplicate == "update":  # every address is already a candidate: rows update them
        _import(post, client, run_worker, data)
    item = _import(post, client, run_worker, data, on_duplicate=on_duplicate)
    good = 5000 - len(expected)
    assert (item.status, item.total_rows, item.failed) == ("done", 5000, len(expected))
    counts = {"skip": (good, 0, 0), "update": (0, good, 0)}[on_duplicate]
    assert (item.imported, item.updated, item.skipped) == counts
    problems = db.session.execute(
        select(CandidateImportProblem.line, CandidateImportProblem.reason)
        .where(CandidateImportProblem.import_id == item.id)
        .order_by(CandidateImportProblem.line)
    ).all()
    assert [tuple(p) for p in problems] == expected
    names = dict(db.session.execute(select(Candidate.email, Candidate.first_name)).tuples().all())
    assert len(names) == good and (names["p3@example.com"], names["zed@example.com"]) == (
        "F3",
        "F4000",
    )
    page = client.get(f"/candidates/imports/{item.id}/progress").text
    assert "Duplicate of line 2602 in this file." in page
    assert addresses() == 0


def test_a_killed_imports_addresses_are_deleted_with_its_file(app, recruiter, post, run_worker):
    frozen = clock.FrozenClock()
    clock.set_clock(frozen)
    _upload(post, b"email\nada@example.com\nbob@example.com\n")
    item = db.session.scalars(select(CandidateImport)).one()
    item.status = "running"  # what a worker killed after its first batch leaves behind
    duplicates.earlier_lines(item, [(2, "ada@example.com")])
    db.session.commit()
    frozen.advance(app.config["IMPORT_UPLOAD_KEEP_SECONDS"] - 60)
    default_queue().enqueue("app.jobs.imports.discard_stale_uploads")
    run_worker()
    assert addresses() == 1 and stored_chunks() == 1  # still running, as far as anyone knows
    frozen.advance(120)
    default_queue().enqueue("app.jobs.imports.discard_stale_uploads")
    run_worker()
    assert addresses() == 0 and stored_chunks() == 0
    db.session.expire_all()
    assert item.status == "failed"
