"""Periodic jobs keep their times during a send backlog; a throttled org has one delayed
dispatcher at a time; rows a dead worker held come back before rows that became due after them.
Real PostgreSQL, Redis, RQ workers and rq-scheduler in their own processes, and SMTP sinks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select, update

from app import clock
from app.campaigns import services
from app.extensions import db, redis
from app.jobs.schedule import declared
from app.jobs.send import dispatch_due
from app.jobs.sweep import sweep
from app.models import Candidate, Event, Message, Role, TemplateKind
from app.outbox import transitions
from app.outbox.queue import kick_dispatcher
from app.queues import send_queue
from tests.conftest import SecondSink

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 4  # every periodic job's, in this test
LOAD = {
    "SWEEP_INTERVAL_SECONDS": str(INTERVAL),
    "CAMPAIGN_CHECK_SECONDS": str(INTERVAL),
    "ROLLUP_INTERVAL_SECONDS": str(INTERVAL),
    "RETENTION_INTERVAL_SECONDS": str(INTERVAL),
    "IMPORT_HOUSEKEEPING_SECONDS": str(INTERVAL),
    "SCHEDULER_INTERVAL_SECONDS": "0.2",
    "SEND_BATCH_SIZE": "8",
    "SEND_BURST": "5",
    "DISPATCH_MAX_SECONDS": "0.3",
    "LOG_LEVEL": "WARNING",
}


class SlowRelay(SecondSink):
    """An SMTP relay 40 ms away (each RCPT answered after 40 ms), as real relays are."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        await asyncio.sleep(0.04)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def _campaign(factories, org, people: int, tag: str) -> None:  # noqa: ANN001
    """A sent-now invitation campaign to `people` new candidates (inserted in one commit)."""
    user = factories.make_user(org, Role.RECRUITER)
    template = factories.make_email_template(org, TemplateKind.INVITATION, name=f"Invite {tag}")
    db.session.add_all(
        Candidate(
            org_id=org.id, email=f"{tag}{n}@example.com", first_name="P", last_name="Q", tags=[tag]
        )
        for n in range(people)
    )
    db.session.commit()
    campaign = services.create(
        org,
        user,
        name=f"Campaign {tag}",
        job=factories.make_job(org),
        template=template,
        audience={"tag": tag},
        respond_by=None,
        slot_starts_at=None,
        location=None,
    )
    services.launch(org, campaign, user, None)
    db.session.commit()
    kick_dispatcher()  # as the launch route does


def _start(*argv: str, log) -> subprocess.Popen:  # noqa: ANN001
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**os.environ, **LOAD},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its scheduler child dies with it
    )


class Lateness:
    """Polls the periodic jobs: how long each run waited between being queued (when it came due)
    and starting, and the runs that were queued again before the last one had started."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.queued: dict[str, object] = {}
        self.waiting: dict[str, object] = {}
        self.waits: dict[str, list[float]] = {job_id: [] for job_id in ids}
        self.missed: list[str] = []

    def poll(self) -> None:
        jobs = Job.fetch_many(self.ids, connection=redis.client)
        for job_id, job in zip(self.ids, jobs, strict=True):
            if job is None or job.enqueued_at is None:
                continue
            if job.enqueued_at != self.queued.get(job_id):
                if job_id in self.waiting:
                    self.missed.append(job_id)  # due again before it started: a whole interval
                self.queued[job_id] = self.waiting[job_id] = job.enqueued_at
            due = self.waiting.get(job_id)
            if due is not None and job.started_at is not None and job.started_at >= due:
                self.waits[job_id].append((job.started_at - due).total_seconds())
                del self.waiting[job_id]

    def runs(self) -> int:
        return min(len(waits) for waits in self.waits.values())


def _requeued(ids: list[int]) -> list:
    """When the sweeper put each of these rows back in the queue (their lease had expired)."""
    db.session.expire_all()
    return db.session.scalars(
        select(Event.created_at).where(Event.message_id.in_(ids), Event.type == "lease_expired")
    ).all()


def _most_per_org(queue, registry: ScheduledJobRegistry) -> int:
    """The most delayed dispatchers waiting for any one org (each org at its own rate; the busy
    org's burst can run dry for a moment too)."""
    jobs = Job.fetch_many(registry.get_job_ids(), connection=redis.client)
    per_org = Counter(job.kwargs.get("woken_for") for job in jobs if job is not None)
    return max(per_org.values(), default=0)


def _count(*where) -> int:  # noqa: ANN002
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Message).where(*where))


def test_periodic_jobs_start_on_time_during_a_throttled_backlog_and_a_busy_relay(
    app, factories, sink, monkeypatch, tmp_path
):
    """3,000 invitations at 600/min, 1,000 more to a relay 40 ms away keeping both workers busy,
    and 5 rows held by a worker that died (claimed, never finished): every periodic job starts
    within its interval, one delayed dispatcher at most waits for the throttled org, and the dead
    worker's rows are queued again within two sweeps of their lease ending (that they then go
    first is the next test's)."""
    relay = SlowRelay()
    relay.start()
    throttled = factories.make_org("Throttled")
    throttled.send_rate_per_minute = 600
    busy = factories.make_org("Busy")
    busy.send_rate_per_minute = 100_000
    db.session.commit()
    factories.make_provider_account(
        busy, settings={"host": "127.0.0.1", "port": relay.port, "security": "none"}
    )
    _campaign(factories, throttled, 3000, "t")
    _campaign(factories, busy, 1000, "b")
    first = db.session.scalars(
        select(Message.id).where(Message.org_id == throttled.id).order_by(Message.id).limit(5)
    ).all()
    monkeypatch.setitem(app.config, "SEND_LEASE_SECONDS", 4.0)
    stranded = transitions.claim(5, ids=first).ids  # its worker dies: never finished
    db.session.commit()
    assert stranded == list(first)
    lease_until = db.session.scalar(select(Message.lease_until).where(Message.id == first[0]))

    for name, value in LOAD.items():  # as the processes will see them
        if name.endswith("_SECONDS") and name != "SCHEDULER_INTERVAL_SECONDS":
            monkeypatch.setitem(app.config, name, type(app.config[name])(float(value)))
    jobs = declared(app)
    assert {job.id: job.interval for job in jobs} == {job.id: INTERVAL for job in jobs}, (
        "a periodic job whose interval LOAD does not set"
    )
    periodic = Lateness([job.id for job in jobs])
    queue = send_queue()
    delayed = ScheduledJobRegistry(queue=queue)
    most_queued = most_delayed = 0
    log = (tmp_path / "processes.log").open("w")
    procs = [_start("worker.py", log=log) for _ in range(2)]
    procs.append(_start("-m", "flask", "--app", "wsgi", "herald", "scheduler", log=log))
    deadline = time.monotonic() + 90
    try:
        while periodic.runs() < 3 or len(_requeued(first)) < len(first):
            assert time.monotonic() < deadline, (
                periodic.runs(),
                periodic.missed,
                _requeued(first),
                db.session.execute(
                    select(Message.status, Message.lease_until, Message.attempts).where(
                        Message.id.in_(first)
                    )
                ).all(),
            )
            periodic.poll()
            most_queued = max(most_queued, queue.count)
            most_delayed = max(most_delayed, _most_per_org(queue, delayed))
            time.sleep(0.05)  # the poll's pace, not a wait for a condition
        busy_left = _count(Message.org_id == busy.id, Message.status != "sent")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        relay.stop()
    print(f"periodic waits {periodic.waits}; send queue max {most_queued}, delayed {most_delayed}")
    assert busy_left > 0  # the relay kept the workers busy the whole time
    assert periodic.missed == []
    assert all(wait < INTERVAL for waits in periodic.waits.values() for wait in waits)
    assert most_delayed <= 1  # one delayed dispatcher per org at most
    assert most_queued <= 10
    assert max(_requeued(first)) - lease_until <= timedelta(seconds=2 * INTERVAL)


def test_rows_of_an_expired_lease_go_before_rows_that_became_due_after_them(ctx, factories):
    org = factories.make_org()
    early = [factories.make_message(org, f"early{n}@example.com").id for n in range(3)]
    held = transitions.claim(3, ids=early).ids  # a worker claims them, then dies
    db.session.commit()
    assert held == early
    start = clock.now()
    later = [factories.make_message(org, f"later{n}@example.com").id for n in range(3)]
    db.session.execute(
        update(Message)
        .where(Message.id.in_(later))
        .values(send_after=start + timedelta(seconds=10))  # e.g. a throttled org's next turn
    )
    db.session.commit()
    lease = ctx.config["SEND_LEASE_SECONDS"]
    clock.set_clock(lambda: start + timedelta(seconds=lease + 30))
    assert sweep()["released"] == 3
    assert transitions.claim(3).ids == early


def test_a_dispatcher_takes_turns_with_other_jobs_on_a_long_backlog(
    ctx, factories, sink, run_worker, monkeypatch
):
    monkeypatch.setitem(ctx.config, "SEND_BATCH_SIZE", 5)
    monkeypatch.setitem(ctx.config, "DISPATCH_MAX_SECONDS", 0.0)
    factories.launch_campaign(factories.make_org(), 12)
    send_queue().empty()  # (the launch's own dispatchers)
    assert dispatch_due()["sent"] == 5  # one batch, then its turn is over
    assert sink.wait_for_count(5, 5) and len(sink.messages) == 5
    run_worker()  # its successor, queued at the back, goes on
    assert sink.wait_for_count(12, 10) and len(sink.messages) == 12


def test_a_throttled_org_has_one_delayed_dispatcher_at_a_time(ctx, factories, sink, monkeypatch):
    monkeypatch.setitem(ctx.config, "SEND_BURST", 1)
    orgs = [factories.make_org(), factories.make_org()]
    for n, org in enumerate(orgs):
        org.send_rate_per_minute = 1
        for i in range(5):
            factories.make_message(org, f"o{n}r{i}@example.com", lane="bulk")
    send_queue().empty()
    for _ in range(3):  # each dispatcher finds both orgs' rows due and their rates used up
        for org in orgs:
            db.session.execute(
                update(Message)
                .where(Message.org_id == org.id, Message.status == "queued")
                .values(send_after=clock.now())
            )
        db.session.commit()
        dispatch_due()
    assert len(sink.messages) == 2  # one each: the burst
    registry = ScheduledJobRegistry(queue=send_queue())
    waiting = [send_queue().fetch_job(job_id).kwargs for job_id in registry.get_job_ids()]
    assert sorted(w["woken_for"] for w in waiting) == sorted(org.id for org in orgs)


def test_a_woken_dispatcher_wakes_again_for_rows_due_soon_not_for_rows_held_back(
    ctx, factories, sink
):
    """Having run, an org's delayed dispatcher arms one more wake-up for its rows that come due
    within a sweep (a batch that hit the rate meanwhile left them past its time), and none for
    rows already due that it could not claim (a paused campaign's), which would repeat forever."""
    org = factories.make_org()
    campaign = factories.launch_campaign(org, 3)
    send_queue().empty()
    registry = ScheduledJobRegistry(queue=send_queue())
    services.pause(org, campaign, factories.make_user(org, role=Role.ADMIN))
    db.session.commit()
    dispatch_due(woken_for=org.id)
    assert registry.count == 0
    assert len(sink.messages) == 0

    soon = clock.now() + timedelta(seconds=5)
    factories.make_message(org, "later@example.com", lane="bulk").send_after = soon
    db.session.commit()
    dispatch_due(woken_for=org.id)
    [job_id] = registry.get_job_ids()
    assert send_queue().fetch_job(job_id).kwargs == {"woken_for": org.id}
