"""Periodic jobs are data, synced to rq-scheduler under stable ids: add, keep, change, remove."""

from __future__ import annotations

from rq_scheduler import Scheduler

from app.extensions import redis
from app.jobs.schedule import HeraldScheduler, PeriodicJob, declared, sync
from app.queues import DEFAULT


def _entries(scheduler: Scheduler) -> dict[str, int]:
    return {job.id: job.meta["interval"] for job in scheduler.get_jobs()}


def test_sync_adds_keeps_changes_and_removes(ctx):
    scheduler = Scheduler(queue_name=DEFAULT, connection=redis.client)
    a = PeriodicJob("herald-a", "app.jobs.sweep.sweep", 30)
    b = PeriodicJob("herald-b", "app.jobs.sweep.sweep", 60)
    assert sync(scheduler, [a, b])["added"] == ["herald-a", "herald-b"]
    assert sync(scheduler, [a, b]) == {
        "added": [],
        "kept": ["herald-a", "herald-b"],
        "changed": [],
        "removed": [],
    }
    assert _entries(scheduler) == {"herald-a": 30, "herald-b": 60}  # restarts add no duplicates

    faster = PeriodicJob("herald-a", "app.jobs.sweep.sweep", 10)
    report = sync(scheduler, [faster])
    assert report["changed"] == ["herald-a"] and report["removed"] == ["herald-b"]
    assert _entries(scheduler) == {"herald-a": 10}


def test_sync_leaves_other_scheduled_jobs_alone(ctx):
    from datetime import UTC, datetime, timedelta

    scheduler = Scheduler(queue_name=DEFAULT, connection=redis.client)
    one_off = scheduler.enqueue_at(datetime.now(UTC) + timedelta(hours=1), "app.jobs.sweep.sweep")
    sync(scheduler, [])
    assert one_off.id in scheduler


def test_scheduler_restores_the_sweeper_after_a_redis_flush(ctx):
    scheduler = HeraldScheduler(ctx, connection=redis.client, interval=1)
    scheduler.run(burst=True)
    ids = [job.id for job in scheduler.get_jobs()]
    assert sorted(ids) == sorted(job.id for job in declared(ctx))
    assert "herald-sweeper" in ids and "herald-campaigns" in ids
    redis.client.flushdb()
    scheduler.resync_seconds = 0
    scheduler.run(burst=True)
    assert sorted(job.id for job in scheduler.get_jobs()) == sorted(ids)
