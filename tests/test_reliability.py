"""Reliability under real failures: workers SIGKILLed mid-campaign, Redis flushed mid-campaign.
Real PostgreSQL, Redis, RQ workers in their own processes, and the SMTP sink."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from app.extensions import db, redis
from app.jobs.sweep import sweep
from app.models import Message

ROOT = Path(__file__).resolve().parent.parent
SENDERS = 4  # per worker: a kill repeats at most the one message each sender had on the wire
SLOW = {
    "PROVIDER_RATE_PER_MINUTE": "600",
    "SEND_LEASE_SECONDS": "2",
    "SEND_BATCH_SIZE": "20",
    "SEND_CONCURRENCY": str(SENDERS),
}


def _worker() -> subprocess.Popen:
    """A real worker process (with its scheduler), sending at 10 mails/s so a kill lands mid-run."""
    return subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env={**os.environ, **SLOW},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)


def _unsent() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).where(Message.status != "sent"))


def _sweeping_until(condition, deadline: float, what: str) -> None:  # noqa: ANN001
    """Run the sweeper as rq-scheduler would (release expired leases, queue a dispatcher when
    something is due) until the condition holds."""
    while not condition():
        assert time.monotonic() < deadline, what
        sweep()


def _drain(sink, total: int, deadline: float) -> None:
    """After the crashes: a fresh worker and the sweeper, until every message is sent."""
    worker = _worker()
    try:
        _sweeping_until(
            lambda: sink.wait_for_count(total, 0.5) and not _unsent(), deadline, "never sent"
        )
    finally:
        _kill(worker)


def test_kill_9_workers_repeatedly_loses_nothing_and_repeats_at_most_one_per_kill(factories, sink):
    org = factories.make_org()
    factories.launch_campaign(org, 60)
    deadline = time.monotonic() + 120
    kills = 0
    for _ in range(4):
        before = len(sink.messages)
        worker = _worker()
        try:  # the crashed worker's job is gone: the sweeper queues a dispatcher
            target = before + 8
            _sweeping_until(
                lambda t=target: sink.wait_for_count(t, 0.5), deadline, "the worker sent nothing"
            )
        finally:
            _kill(worker)
        kills += 1
    _drain(sink, 60, deadline)

    per_id = Counter(sink.message_ids())
    expected = {m.message_id for m in db.session.scalars(select(Message))}
    assert set(per_id) == expected  # nothing lost
    duplicates = sum(n - 1 for n in per_id.values())
    print(f"kills={kills} duplicates={duplicates} delivered={sum(per_id.values())}")
    assert duplicates <= kills * SENDERS


def test_redis_flushed_mid_campaign_every_message_still_arrives_once(factories, sink):
    org = factories.make_org()
    factories.launch_campaign(org, 40)
    deadline = time.monotonic() + 90
    worker = _worker()
    try:
        _sweeping_until(lambda: sink.wait_for_count(10, 0.5), deadline, "nothing sent")
        redis.client.flushdb()  # queues, scheduled dispatchers, buckets, breakers: all gone
        _sweeping_until(
            lambda: sink.wait_for_count(40, 0.5) and not _unsent(), deadline, "never sent"
        )
    finally:
        _kill(worker)
    per_id = Counter(sink.message_ids())
    assert len(per_id) == 40 and set(per_id.values()) == {1}
