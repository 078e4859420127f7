"""`flask herald ...` commands: seed, mail sink, scheduler, sweeper, key rotation."""

from __future__ import annotations

import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db, redis

herald = AppGroup("herald", help="Herald operations.")

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "herald-demo-pass"


@herald.command("seed")
def seed() -> None:
    """Create the demo organization and login (once), and print how to sign in."""
    from app import clock
    from app.auth.services import create_org, find_user, hash_password
    from app.models import User

    user = find_user(DEMO_EMAIL)
    if user is None:
        user = User(
            email=DEMO_EMAIL,
            name="Dana Demo",
            password_hash=hash_password(DEMO_PASSWORD),
            email_verified_at=clock.now(),
        )
        db.session.add(user)
        db.session.flush()
        org = create_org("Acme Recruiting", user, "Europe/London")
        org.postal_address = "1 Example Street, London EC1A 1AA"  # (bulk mail carries one)
        _demo_job_and_candidates(org.id)
        db.session.commit()
    base = current_app.config["PUBLIC_BASE_URL"]
    click.echo(
        f"\n  Herald is at {base}\n  Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}"
        "  (unless you changed that password)\n"
        "  The demo org has a job and three candidates to invite; what it sends lands in the\n"
        "  Dev mailbox (in the menu), nowhere else.\n"
    )


DEMO_CANDIDATES = (
    ("ada@example.com", "Ada", "Okafor"),
    ("grace@example.com", "Grace", "Lindqvist"),
    ("alan@example.com", "Alan", "Moreau"),
)


def _demo_job_and_candidates(org_id: int) -> None:
    """Something to invite at once on a fresh install (only with the demo org, once)."""
    from app.models import Candidate, Job

    db.session.add(
        Job(
            org_id=org_id,
            title="Backend Engineer",
            department="Engineering",
            location="Remote",
            hiring_manager="Sam Rivera",
        )
    )
    for email, first, last in DEMO_CANDIDATES:
        db.session.add(
            Candidate(org_id=org_id, email=email, first_name=first, last_name=last, tags=["demo"])
        )


@herald.command("mailsink")
def mailsink() -> None:
    """Run the development SMTP sink until interrupted."""
    from app.devmail.sink import start_sink

    cfg = current_app.config
    controller = start_sink(cfg["DEVMAIL_DIR"], cfg["DEVMAIL_HOST"], cfg["DEVMAIL_PORT"])
    click.echo(f"dev mail sink listening on {cfg['DEVMAIL_HOST']}:{cfg['DEVMAIL_PORT']}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@herald.command("scheduler")
@click.option("--burst", is_flag=True, help="Sync and enqueue what is due once, then quit.")
def scheduler(burst: bool) -> None:
    """Run rq-scheduler with Herald's periodic jobs (re-synced every minute)."""
    from app.jobs.schedule import HeraldScheduler

    interval = current_app.config["SCHEDULER_INTERVAL_SECONDS"]
    HeraldScheduler(
        current_app._get_current_object(), connection=redis.client, interval=interval
    ).run(burst=burst)


@herald.command("sync-schedule")
def sync_schedule() -> None:
    """Sync the declared periodic jobs to rq-scheduler (for a plain `rqscheduler` process)."""
    from rq_scheduler import Scheduler

    from app.jobs.schedule import declared, sync
    from app.queues import PERIODIC

    report = sync(Scheduler(queue_name=PERIODIC, connection=redis.client), declared(current_app))
    click.echo(report)


@herald.command("sweep")
def sweep() -> None:
    """Run the sweeper once now."""
    from app.jobs.sweep import sweep as run_sweep

    click.echo(run_sweep())


@herald.command("inbound")
def inbound() -> None:
    """Run the inbound SMTP server (DSNs at the VERP address, unsubscribe by mail)."""
    from app.provider_events.inbound_server import start

    cfg = current_app.config
    controller = start(current_app._get_current_object())
    click.echo(f"Inbound mail on {cfg['INBOUND_HOST']}:{cfg['INBOUND_PORT']} (Ctrl-C to stop)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    controller.stop()


@herald.command("rebuild-rollups")
@click.option("--org", "org_ids", type=int, multiple=True, help="only these organizations")
def rebuild_rollups(org_ids: tuple[int, ...]) -> None:
    """Recompute the dashboard's rollups from the events (they must agree)."""
    from sqlalchemy import select

    from app.models import Organization
    from app.tracking.rollups import flush, rebuild

    flush()
    db.session.commit()
    ids = list(org_ids) or list(db.session.scalars(select(Organization.id)))
    rebuild(ids)
    db.session.commit()
    click.echo(f"Rollups rebuilt for {len(ids)} organization(s).")


@herald.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every secret at rest with the first key of ENCRYPTION_KEYS.

    Put the new key first, keep the old ones after it, run this, then drop the old keys."""
    from app.crypto import rotate

    counts = rotate()
    db.session.commit()
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()) + " re-encrypted.")


def register_cli(app: Flask) -> None:
    """Attach the command group."""
    app.cli.add_command(herald)
