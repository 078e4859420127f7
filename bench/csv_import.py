"""Import 100,000 CSV rows (target: <= 60 s) through the real import path (parse, validate
every address, dedupe, batched upserts, progress commits). Baseline in the same run: reading the
same file with csv.reader alone. Last line: import_s=<seconds> rows=<n> ..."""

from __future__ import annotations

import csv
import io
import os
import time

from _db import app_with_org, with_database

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
TARGET_S = 60


def _csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Email", "First name", "Last name", "Phone", "Time zone", "Tags", "Source"])
    for n in range(rows):
        writer.writerow(
            [
                f"candidate{n}@example.com",
                f"First{n}",
                f"Last{n}",
                "+44 20 7946 0000",
                "Europe/London",
                "backend;2026",
                "referral",
            ]
        )
    return out.getvalue().encode()


def run() -> None:
    from app.candidates import importer
    from app.extensions import db
    from app.models import Candidate, CandidateImport

    app, org_id, user_id = app_with_org()
    data = _csv(ROWS)
    with app.app_context():
        item = CandidateImport(
            org_id=org_id, filename="bench.csv", encoding="", delimiter="", created_by_id=user_id
        )
        db.session.add(item)
        db.session.flush()
        importer.receive(item, io.BytesIO(data))
        item.status = "queued"
        db.session.commit()
        started = time.perf_counter()
        for _ in importer.run(item):  # as the import job does
            db.session.commit()
        elapsed = time.perf_counter() - started
        count = db.session.query(Candidate).count()
        assert count == ROWS and item.imported == ROWS, (count, item.imported, item.failed)
    started = time.perf_counter()
    sum(1 for _ in csv.reader(io.StringIO(data.decode())))
    baseline = time.perf_counter() - started
    print(f"file_mb={len(data) / 1e6:.1f} rows_per_s={ROWS / elapsed:.0f}")
    print(
        f"import_s={elapsed:.1f} rows={ROWS} baseline_csv_read_s={baseline:.2f} "
        f"ratio={elapsed / baseline:.0f} target_s={TARGET_S}"
    )


if __name__ == "__main__":
    with_database(run)
