"""Dashboard page time on a large org (target: p95 <= 300 ms over all dashboard requests).

One org with BENCH_EVENTS events (default 1,000,000) over the last 90 days: 200 campaigns (40 jobs,
20 invitation templates) launched across the period, their messages and events (sent, delivered,
opened by people and by machines, clicked, accepted, declined, bounced) written with COPY, with
the first / first-human flags and the message columns set as the tracking code would. The rollups
are then built with the app's own code (rollups.flush(), then rollups.rebuild() as a cross-check),
both timed. Then GET /dashboard through Flask's test client, logged in as a member: the org, one
campaign and one template, each over the default 30 days and over 90 days, 20 timed requests
each after 2 warm-up requests (whole request: auth, tenant, queries, Jinja).
Last line: p95_ms=<p95 over all dashboard requests> events=<n>
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from _db import app_with_org, with_database

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
CAMPAIGNS, JOBS, TEMPLATES, DAYS = 200, 40, 20, 90
RUNS, WARMUP = int(os.environ.get("BENCH_RUNS", "20")), 2
TARGET_MS = 300
EVENTS_PER_MESSAGE = 3.35  # what _message() makes on average (sizes the campaigns)
UA = json.dumps({"ua": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0"})
MPP = json.dumps({"ua": "Mozilla/5.0"})
PERMANENT = json.dumps({"severity": "permanent", "code": "550", "text": "5.1.1 no such user"})
URLS = ("https://careers.example.com/jobs/{c}", "https://example.com/team")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _message(rng: random.Random, sent: datetime, latest: datetime, c: int) -> tuple[dict, list]:
    """One message's columns and its events in time order:
    [(type, at, detail, machine, machine_reason, first, first_human)]."""
    events = [("sent", sent, "{}", False, None, False, False)]
    cols: dict = {"sent_at": sent}
    if rng.random() < 0.035:
        at = sent + timedelta(seconds=rng.uniform(2, 120))
        events.append(("bounced", at, PERMANENT, False, None, False, False))
        cols.update(bounced_at=at, bounce_type="hard")
        return cols, events
    delivered = sent + timedelta(seconds=rng.uniform(1, 60))
    events.append(("delivered", delivered, "{}", False, None, False, False))
    cols.update(delivered_at=delivered, delivery="delivered")
    opens, clicks = [], []
    if rng.random() < 0.3:  # Apple Mail Privacy Protection prefetch, minutes after delivery
        opens.append((delivered + timedelta(seconds=rng.uniform(5, 900)), MPP, True, "apple_mpp"))
    if rng.random() < 0.03:  # a link scanner right after delivery
        at = delivered + timedelta(seconds=rng.uniform(1, 8))
        clicks.append((at, UA, True, "click_right_after_send"))
    if rng.random() < 0.5:
        at = delivered + timedelta(hours=min(rng.expovariate(1 / 18), 24 * 6))
        for _ in range(1 + min(3, int(rng.expovariate(1.2)))):
            opens.append((at, UA, False, None))
            at += timedelta(hours=rng.expovariate(1 / 12))
        if rng.random() < 0.4:
            click = opens[-1][0] + timedelta(seconds=rng.uniform(5, 600))
            for n in range(1 + (rng.random() < 0.25)):
                detail = json.dumps({"ua": "Mozilla/5.0 Chrome/131", "url": URLS[n].format(c=c)})
                clicks.append((click + timedelta(minutes=n * 3), detail, False, None))
            answer = click + timedelta(minutes=rng.uniform(1, 120))
            kind = rng.choices(("accepted", "declined", None), (0.45, 0.12, 0.43))[0]
            if kind and answer <= latest:
                events.append((kind, answer, "{}", False, None, False, False))
    for kind, hits, first_col, human_col in (
        ("opened", opens, "opened_at", "human_opened_at"),
        ("clicked", clicks, "clicked_at", "human_clicked_at"),
    ):
        hits = sorted((h for h in hits if h[0] <= latest), key=lambda h: h[0])
        human_seen = False
        for i, (at, detail, machine, reason) in enumerate(hits):
            first_human = not machine and not human_seen
            human_seen = human_seen or not machine
            events.append((kind, at, detail, machine, reason, i == 0, first_human))
            if i == 0:
                cols[first_col] = at
            if first_human:
                cols[human_col] = at
                cols["delivery"] = kind
    events.sort(key=lambda e: e[1])
    return cols, events


MESSAGE_COLS = (
    "id, org_id, kind, template, template_version_id, context, to_email, to_name, subject, "
    "status, idempotency_key, message_id, send_after, attempts, sent_at, delivery, delivered_at, "
    "opened_at, human_opened_at, clicked_at, human_clicked_at, bounced_at, bounce_type, "
    "campaign_id, created_at"
)
EVENT_COLS = (
    "id, org_id, message_id, type, created_at, detail, machine, machine_reason, first, first_human"
)


def _seed(org_id: int, user_id: int) -> dict:
    """Jobs, templates and campaigns through the ORM; messages and events with COPY."""
    from sqlalchemy import text

    from app import clock
    from app.extensions import db
    from app.models import Campaign, CampaignStatus, EmailTemplate, Job, TemplateKind
    from app.templates_editor.defaults import DEFAULTS
    from app.templates_editor.services import add_version

    rng = random.Random(42)
    now = clock.now()
    jobs = [Job(org_id=org_id, title=f"Role {n}", department="Engineering") for n in range(JOBS)]
    templates = []
    _, subject, html = DEFAULTS[TemplateKind.INVITATION]
    for n in range(TEMPLATES):
        template = EmailTemplate(org_id=org_id, name=f"Invite {n}", kind=TemplateKind.INVITATION)
        db.session.add(template)
        db.session.flush()
        add_version(template, None, subject, html, None)
        templates.append(template)
    db.session.add_all(jobs)
    db.session.flush()
    campaigns = []
    span = timedelta(days=DAYS - 2)
    for n in range(CAMPAIGNS):  # oldest first; the newest is launched two days ago
        template = templates[n % TEMPLATES]
        launched = now - timedelta(days=DAYS) + span * (n + rng.random()) / CAMPAIGNS
        campaigns.append(
            Campaign(
                org_id=org_id,
                name=f"Campaign {n:03d}",
                job_id=jobs[n % JOBS].id,
                template_id=template.id,
                template_version_id=template.current_version_id,
                status=CampaignStatus.SENT,
                audience={"tag": f"c{n}"},
                started_at=launched,
                finished_at=launched + timedelta(minutes=30),
                created_by_id=user_id,
                created_at=launched - timedelta(hours=1),
            )
        )
    db.session.add_all(campaigns)
    db.session.commit()

    weights = [rng.uniform(0.2, 1.8) for _ in campaigns]
    scale = EVENTS * 1.04 / EVENTS_PER_MESSAGE / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    first_message = db.session.scalar(text("SELECT coalesce(max(id), 0) + 1 FROM messages"))
    first_event = db.session.scalar(text("SELECT coalesce(max(id), 0) + 1 FROM events"))
    message_id, event_id = first_message, first_event
    latest = now - timedelta(minutes=1)
    raw = db.session.connection().connection.driver_connection
    messages: list[tuple] = []
    events_out: list[tuple] = []

    def write() -> None:
        """One COPY at a time on a connection: the messages of a chunk, then their events."""
        with raw.cursor() as cursor:
            for (table, cols), rows in (
                (("messages", MESSAGE_COLS), messages),
                (("events", EVENT_COLS), events_out),
            ):
                with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        messages.clear()
        events_out.clear()

    done, top = False, max(sizes)
    # Round-robin over the campaigns, so stopping at EVENTS trims every campaign a little (and
    # past the largest size, every campaign gets more until there are EVENTS).
    for k in itertools.count():
        for campaign, size in zip(campaigns, sizes, strict=True):
            if size <= k < top:
                continue
            sent = campaign.started_at + timedelta(seconds=rng.uniform(0, 1800))
            cols, events = _message(rng, sent, latest, campaign.id)
            messages.append(
                (
                    message_id,
                    org_id,
                    "invitation",
                    "version",
                    campaign.template_version_id,
                    "{}",
                    f"m{message_id}@example.com",
                    f"Candidate {message_id}",
                    "Interview invitation",
                    "sent",
                    f"bench:{message_id}",
                    f"<bench.{message_id}@herald.localhost>",
                    sent,
                    1,
                    sent,
                    cols.get("delivery"),
                    cols.get("delivered_at"),
                    cols.get("opened_at"),
                    cols.get("human_opened_at"),
                    cols.get("clicked_at"),
                    cols.get("human_clicked_at"),
                    cols.get("bounced_at"),
                    cols.get("bounce_type"),
                    campaign.id,
                    sent,
                )
            )
            for event in events[: EVENTS - (event_id - first_event)]:
                events_out.append((event_id, org_id, message_id, *event))
                event_id += 1
            message_id += 1
            if len(events_out) >= 50_000:
                write()
            if event_id - first_event >= EVENTS:
                done = True
                break
        if done:
            break
    write()
    db.session.execute(text("SELECT setval('messages_id_seq', :n)"), {"n": message_id - 1})
    db.session.execute(text("SELECT setval('events_id_seq', :n)"), {"n": event_id - 1})
    db.session.commit()
    by_size = sorted(
        (c for c in campaigns if c.started_at > now - timedelta(days=25)),
        key=lambda c: -sizes[campaigns.index(c)],
    )
    return {
        "messages": message_id - first_message,
        "events": event_id - first_event,
        "campaign": by_size[0].id,
        "template": by_size[0].template_id,
    }


def _analyze() -> None:
    """What autovacuum does within a minute of a bulk load: fresh statistics on every table.
    (Without them, campaigns looks like a 1-row table and the campaigns table of the page takes
    a nested loop over the whole bucket range per campaign: ~1 s instead of ~0.15 s.)"""
    from app.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def _rollups(org_id: int) -> tuple[float, float, int]:
    from sqlalchemy import text

    from app.extensions import db
    from app.tracking import rollups

    sums = "SELECT sum(sent), sum(delivered), sum(opens), sum(unique_clicks_human) FROM rollups"
    started = time.perf_counter()
    rollups.flush()
    db.session.commit()  # as the rollup job and the CLI do
    flush_s = time.perf_counter() - started
    after_flush = db.session.execute(text(sums)).one()
    started = time.perf_counter()
    rollups.rebuild([org_id])
    db.session.commit()  # as the rollup job and the CLI do
    rebuild_s = time.perf_counter() - started
    after_rebuild = db.session.execute(text(sums)).one()
    truth = db.session.execute(
        text(
            "SELECT count(*) FILTER (WHERE type = 'sent'), count(*) FILTER (WHERE type ="
            " 'delivered'), count(*) FILTER (WHERE type = 'opened'), count(*) FILTER (WHERE"
            " type = 'clicked' AND first_human) FROM events"
        )
    ).one()
    assert tuple(after_flush) == tuple(after_rebuild) == tuple(truth), (
        after_flush,
        after_rebuild,
        truth,
    )
    rows = db.session.scalar(text("SELECT count(*) FROM rollups"))
    return flush_s, rebuild_s, rows


def run() -> None:
    from app import clock
    from app.extensions import db
    from app.models import Organization, User

    started = time.perf_counter()
    app, org_id, user_id = app_with_org()
    with app.app_context():
        seeded = _seed(org_id, user_id)
        print(
            f"seeded {seeded['messages']} messages, {seeded['events']} events, {CAMPAIGNS} "
            f"campaigns in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        _analyze()
        flush_s, rebuild_s, rows = _rollups(org_id)
        _analyze()
        print(
            f"rollups: flush() {flush_s:.1f} s, rebuild([org]) {rebuild_s:.1f} s, "
            f"{rows} rollup rows (totals agree with the events)",
            flush=True,
        )
        org = db.session.get(Organization, org_id)
        user_key = db.session.get(User, user_id).get_id()
        today = clock.now().astimezone(ZoneInfo(org.timezone)).date()
    start90 = (today - timedelta(days=DAYS - 1)).isoformat()
    pages = {
        "org 30d": "/dashboard",
        "org 90d": f"/dashboard?from={start90}",
        "campaign 30d": f"/dashboard?campaign={seeded['campaign']}",
        "campaign 90d": f"/dashboard?campaign={seeded['campaign']}&from={start90}",
        "template 30d": f"/dashboard?template={seeded['template']}",
        "template 90d": f"/dashboard?template={seeded['template']}&from={start90}",
    }
    client = app.test_client()  # no app context held: each request gets its own, as in production
    with client.session_transaction() as sess:
        sess["_user_id"] = user_key
        sess["_fresh"] = True
        sess["org_id"] = org_id
    everything = []
    for name, url in pages.items():
        times = []
        for n in range(WARMUP + RUNS):
            t0 = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - t0) * 1000
            assert response.status_code == 200, (url, response.status_code)
            assert b"Campaign " in response.data, url
            if n >= WARMUP:
                times.append(elapsed)
        everything += times
        print(
            f"{name:13} p50 {statistics.median(times):6.1f} ms  p95 {_percentile(times, 0.95):6.1f}"
            f" ms  max {max(times):6.1f} ms  ({len(response.data) // 1024} KB)",
            flush=True,
        )
    p95 = _percentile(everything, 0.95)
    print(f"total {time.perf_counter() - started:.0f} s; target p95 <= {TARGET_MS} ms")
    print(f"p95_ms={p95:.1f} events={seeded['events']}")


if __name__ == "__main__":
    with_database(run)
