"""Fan-out of a 100,000-recipient campaign (target: <= 20 s, <= 400 MB RSS): every invitation
(token, hash, encrypted copy), message row and 'queued' event written in one transaction.
Baseline in the same run: COPY of the same number of bare rows into a scratch table.
Last line: fanout_s=<seconds> rss_mb=<peak> recipients=<n> ..."""

from __future__ import annotations

import os
import resource
import time

from _db import app_with_org, draft_campaign, with_database

RECIPIENTS = int(os.environ.get("BENCH_RECIPIENTS", "100000"))
TARGET_S, TARGET_MB = 20, 400


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run() -> None:
    from app.campaigns import services
    from app.extensions import db
    from app.mail.outbox import kick_dispatcher
    from app.models import Campaign, Candidate

    app, org_id, user_id = app_with_org()
    with app.app_context():
        org, user, campaign = draft_campaign(org_id, user_id, RECIPIENTS)
        before = _peak_mb()
        started = time.perf_counter()
        written = services.launch(org, campaign, user, None)
        db.session.commit()
        kick_dispatcher()  # as the launch route does
        elapsed = time.perf_counter() - started
        assert written == RECIPIENTS == db.session.query(Candidate).count()
        assert db.session.get(Campaign, campaign.id).recipients == RECIPIENTS
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE scratch (a bigint, b text, c text)")
            started_copy = time.perf_counter()
            with cursor.copy("COPY scratch FROM STDIN") as copy:
                for n in range(RECIPIENTS):
                    copy.write_row((n, f"c{n}@example.com", "x" * 40))
            baseline = time.perf_counter() - started_copy
        db.session.rollback()
    peak = _peak_mb()
    print(f"rss before launch {before:.0f} MB; COPY of {RECIPIENTS} bare rows {baseline:.2f} s")
    print(
        f"fanout_s={elapsed:.1f} rss_mb={peak:.0f} recipients={RECIPIENTS} "
        f"baseline_copy_s={baseline:.2f} ratio={elapsed / baseline:.1f} target_s={TARGET_S} "
        f"target_mb={TARGET_MB}"
    )


if __name__ == "__main__":
    with_database(run)
