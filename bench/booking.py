"""Interview booking under load, over real HTTP (goal: bookings = slots, overbooked = 0,
double_booked = 0, confirmations = bookings, p99 <= 150 ms).

In a throwaway database on the configured PostgreSQL (and REDIS_URL: give it a DB number no
other Herald process uses, e.g. redis://127.0.0.1:6379/5): one org, 2,000 candidates and two slots
campaigns to them for two jobs, launched through the real services (fan-out writes the invitation
rows and messages; the messages are then marked sent, as in bench/tracking.py: invitations go out
before the timed phases). The app runs under gunicorn as in production (`-w 2 -k gthread
--threads 8`, HERALD_ENV=production); 2 `worker.py` processes send the booking confirmations to
the dev mail sink (app/devmail/sink.py) in a process of its own. The public pages' rate limit is
raised through its setting (INVITE_RATE_PER_MINUTE) and the org's send rate through its own, so
neither limits the run; any 429 counts as an error.

Race: 200 slots of capacity 1; 32 client threads (each its own keep-alive connection and cookie
session per candidate) take candidates in turn, open the invitation page, post the form for a
random open slot, and on a refusal read the page again and try another, until a page shows no open
slot. Every 10th candidate is driven by two clients at once: two sessions open the page and post
at the same moment (for random slots), so one candidate's double booking is actually attempted.
Counted in PostgreSQL: active bookings, slots, slots holding more active bookings than places,
candidates holding more than one; at the dev sink: the confirmations (after the workers drained),
and candidates who got two.

Latency: a second campaign with 2,000 slots. First 100 booking POSTs from one client, each after
the last answered (the service time alone, printed with the load average, since this machine is
shared); then booking POSTs offered at 50 per second for 20 s,
open loop (each request starts on its schedule, from a pool of 64 connections, whether or not
earlier ones have answered), each candidate its own slot; p50 / p99 from the scheduled start. The
workers are stopped first (on a 2-core machine they would take the CPU gunicorn measures; the
confirmations queued meanwhile wait as outbox rows). The
form fields are the page's: one CSRF session read from a page, the signed form state made with the
app's own signer (rendering a 2,000-slot page per candidate first would take most of the budget).
Last line: bookings=<n> slots=<n> overbooked=<n> double_booked=<n> confirmations=<n> p50_ms=<n>
p99_ms=<n>
"""

from __future__ import annotations

import collections
import os
import secrets
import sys
import tempfile
import threading
import time
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from _booking_http import RATE, SECONDS, booking_forms, one_at_a_time, open_loop, race_phase
from _db import app_with_org, copy_candidates, with_database
from send_throughput import SPAWN, _workers
from send_throughput import _stop as stop_workers
from tracking import _free_port, _serve, _worker_cpu

CANDIDATES, RACE_SLOTS, LATENCY_SLOTS = 2000, 200, 2000
HUGE = 100_000_000
JOBS = ("Race Engineer", "Latency Engineer")
SERVICE_SAMPLE = 100  # booking POSTs one at a time before the open loop (its own candidates)


# ---- setup ---------------------------------------------------------------------------------


def _slots(org_id: int, campaign_id: int, count: int) -> None:
    """`count` one-place slots of 45 minutes from three days ahead, 50 a day."""
    from app import clock
    from app.extensions import db
    from app.models import InterviewSlot

    start = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    rows = []
    for n in range(count):
        at = start + timedelta(days=n // 50, minutes=15 * (n % 50))
        rows.append(
            {
                "org_id": org_id,
                "campaign_id": campaign_id,
                "starts_at": at,
                "capacity": 1,
                "ends_at": at + timedelta(minutes=45),
                "created_at": clock.now(),
            }
        )
    db.session.execute(InterviewSlot.__table__.insert(), rows)


def _seed() -> tuple[object, list[int], list[list[tuple[int, str]]]]:
    """The app, the two campaigns' ids and their (invitation id, token) lists."""
    from sqlalchemy import select, text

    from app.campaigns import services
    from app.extensions import db
    from app.invitations.tokens import reveal
    from app.models import Invitation, Job, Organization, TemplateKind, User
    from app.templates_editor.services import create_defaults

    app, org_id, user_id = app_with_org()
    with app.app_context():
        org, user = db.session.get(Organization, org_id), db.session.get(User, user_id)
        org.send_rate_per_minute = HUGE  # the confirmations are not held by the org's rate
        template = next(t for t in create_defaults(org, user) if t.kind == TemplateKind.INVITATION)
        copy_candidates(org_id, CANDIDATES)
        db.session.commit()
        campaigns, tokens = [], []
        for title, slots in zip(JOBS, (RACE_SLOTS, LATENCY_SLOTS), strict=True):
            job = Job(org_id=org_id, title=title, department="Platform")
            db.session.add(job)
            db.session.commit()
            campaign = services.create(
                org,
                user,
                name=title,
                job=job,
                template=template,
                audience={"tag": "bench"},
                respond_by=None,
                slot_starts_at=None,
                location=None,
            )
            campaign.scheduling = "slots"
            _slots(org_id, campaign.id, slots)  # a slots campaign is sent only with free slots
            assert services.launch(org, campaign, user, None) == CANDIDATES
            db.session.execute(
                text("UPDATE messages SET status = 'sent', sent_at = now() WHERE campaign_id = :c"),
                {"c": campaign.id},
            )
            db.session.commit()
            rows = db.session.execute(
                select(Invitation.id, Invitation.token_encrypted)
                .where(Invitation.campaign_id == campaign.id)
                .order_by(Invitation.id)
            ).all()
            campaigns.append(campaign.id)
            tokens.append([(i, reveal(enc)) for i, enc in rows])
        return app, campaigns, tokens


def _sink_main(directory: str, port: int) -> None:
    """The dev mail sink in a process of its own (it stores every mail as a file)."""
    from app.devmail.sink import start_sink

    start_sink(directory, "127.0.0.1", port)
    threading.Event().wait()


# ---- counting --------------------------------------------------------------------------------


def _race_counts(campaign_id: int) -> dict[str, int]:
    """What PostgreSQL holds for the race campaign."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["DATABASE_URL"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        one = lambda sql: conn.execute(sql, {"c": campaign_id}).fetchone()[0]  # noqa: E731
        return {
            "bookings": one(
                "SELECT count(*) FROM bookings WHERE campaign_id = %(c)s AND status = 'active'"
            ),
            "slots": one("SELECT count(*) FROM interview_slots WHERE campaign_id = %(c)s"),
            "overbooked": one(
                "SELECT count(*) FROM interview_slots s WHERE campaign_id = %(c)s AND s.capacity"
                " < (SELECT count(*) FROM bookings b WHERE b.slot_id = s.id"
                " AND b.status = 'active')"
            ),
            "double_booked": one(
                "SELECT count(*) FROM (SELECT candidate_id FROM bookings WHERE campaign_id = %(c)s"
                " AND status = 'active' GROUP BY candidate_id HAVING count(*) > 1) twice"
            ),
            "counter_off": one(
                "SELECT count(*) FROM interview_slots s WHERE campaign_id = %(c)s AND s.booked"
                " <> (SELECT count(*) FROM bookings b WHERE b.slot_id = s.id"
                " AND b.status = 'active')"
            ),
        }


def _latency_slots(campaign_id: int) -> list[int]:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["DATABASE_URL"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        rows = conn.execute(
            "SELECT id FROM interview_slots WHERE campaign_id = %s ORDER BY id", (campaign_id,)
        ).fetchall()
    return [r[0] for r in rows]


def _confirmations(directory: Path, title: str) -> collections.Counter:
    """Booking confirmations for the job at the dev sink, per recipient."""
    parser = BytesHeaderParser(policy=policy.default)
    per_recipient: collections.Counter = collections.Counter()
    for eml in directory.glob("*.eml"):
        headers = parser.parsebytes(eml.read_bytes()[:16384])
        if str(headers.get("Subject", "")).startswith(f"Your {title} interview"):
            per_recipient[headers["To"].addresses[0].addr_spec] += 1
    return per_recipient


def _wait_for_confirmations(directory: Path, title: str, expected: int) -> collections.Counter:
    """Until the workers delivered `expected` confirmations, or none came for 30 s."""
    last, changed = -1, time.monotonic()
    while True:
        got = _confirmations(directory, title)
        total = sum(got.values())
        if total >= expected:
            return got
        if total != last:
            last, changed = total, time.monotonic()
        if time.monotonic() - changed > 30:
            print(f"confirmations stalled at {total} of {expected}")
            return got
        time.sleep(0.5)


def _percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# ---- run -------------------------------------------------------------------------------------


def run() -> None:
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="herald-bench-booking-"))
    sink_port, mail_dir = _free_port(), work / "devmail"
    os.environ.update(
        INVITE_RATE_PER_MINUTE=str(HUGE),  # the public pages' per-IP limit, out of the way
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink_port),
        SMTP_SECURITY="none",
        PROVIDER_RATE_PER_MINUTE=str(HUGE),
        SEND_BURST=str(HUGE),
        LOG_LEVEL=os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
    )
    app, (race_id, latency_id), (race_tokens, latency_tokens) = _seed()
    print(f"seeded {CANDIDATES} candidates in 2 campaigns in {time.perf_counter() - started:.0f} s")
    sink = SPAWN.Process(target=_sink_main, args=(str(mail_dir), sink_port), daemon=True)
    sink.start()
    port = _free_port()
    server = _serve(port, work / "gunicorn.log")
    workers = []
    context = app.app_context()  # the workers are found and stopped through the app's Redis
    context.push()
    try:
        workers = _workers(dict(os.environ), work)
        t0 = time.perf_counter()
        print(f"load average before the race {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        race = race_phase(port, race_tokens)
        print(f"race: {time.perf_counter() - t0:.1f} s, {dict(race.statuses)}")
        counts = _race_counts(race_id)
        got = _wait_for_confirmations(mail_dir, JOBS[0], counts["bookings"])
        # on this 2-core box the workers would share the CPU with gunicorn: in production they
        # run beside it, not on it; the latency phase's confirmations wait in the outbox
        stop_workers(workers)
        workers = []
        cookie, forms = booking_forms(app, port, latency_tokens, _latency_slots(latency_id))
        alone = one_at_a_time(port, cookie, forms[:SERVICE_SAMPLE])
        print(
            f"one at a time: {SERVICE_SAMPLE} POSTs, p50 {_percentile(alone, 50):.1f} ms, "
            f"p99 {_percentile(alone, 99):.1f} ms; load average {os.getloadavg()[0]:.1f}"
        )
        before = sum(_worker_cpu(server.pid).values())
        latencies = open_loop(port, cookie, forms[SERVICE_SAMPLE : SERVICE_SAMPLE + RATE * SECONDS])
        used = (sum(_worker_cpu(server.pid).values()) - before) / os.sysconf("SC_CLK_TCK")
        print(
            f"gunicorn workers' CPU per booking POST {used * 1000 / len(latencies):.1f} ms; "
            f"load average after the open loop {os.getloadavg()[0]:.1f}"
        )
    finally:
        stop_workers(workers)
        server.terminate()
        server.wait(timeout=30)
        sink.terminate()
        sink.join(5)
        context.pop()
    log = (work / "gunicorn.log").read_text()
    if "Traceback" in log:
        print("server log has tracebacks; the first:\n" + log[log.index("Traceback") :][:3000])
    errors = race.errors
    print(f"race errors (429s included): {len(errors)} {collections.Counter(errors) or ''}")
    print(f"slot counters differing from their active bookings: {counts['counter_off']}")
    twice_at_sink = sum(1 for n in got.values() if n > 1)
    confirmations = sum(got.values())
    print(f"candidates with two confirmations at the sink: {twice_at_sink}; work dir {work}")
    print(f"total {time.perf_counter() - started:.0f} s")
    print(
        f"bookings={counts['bookings']} slots={counts['slots']} overbooked={counts['overbooked']} "
        f"double_booked={max(counts['double_booked'], twice_at_sink)} "
        f"confirmations={confirmations} p50_ms={_percentile(latencies, 50):.1f} "
        f"p99_ms={_percentile(latencies, 99):.1f}"
    )


if __name__ == "__main__":
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    if not os.environ.get("ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        os.environ["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    sys.setswitchinterval(0.001)  # 32 client threads in one process: hand the GIL over often
    with_database(run)
