"""Periodic jobs, declared as data and synced to rq-scheduler under stable ids.

Entries live in Redis. sync() adds what is missing, keeps what matches, replaces what changed and
removes what is no longer declared; the scheduler re-syncs every minute, so a Redis flush cannot
lose the sweeper's own schedule.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from flask import Flask
from rq_scheduler import Scheduler

from app.queues import PERIODIC

log = logging.getLogger(__name__)
MARK = "herald_periodic"


@dataclass(frozen=True)
class PeriodicJob:
    """One job that runs every `interval` seconds."""

    id: str
    func: str
    interval: int
    queue: str = PERIODIC  # served first by every worker: never behind a send backlog
    timeout: int = 300

    @property
    def signature(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def declared(app: Flask) -> list[PeriodicJob]:
    """Every periodic job Herald runs."""
    return [
        PeriodicJob("herald-sweeper", "app.jobs.sweep.sweep", app.config["SWEEP_INTERVAL_SECONDS"]),
        PeriodicJob(
            "herald-campaigns",
            "app.jobs.campaigns.start_due_campaigns",
            app.config["CAMPAIGN_CHECK_SECONDS"],
        ),
        PeriodicJob(
            "herald-reminders",
            "app.jobs.campaigns.send_reminders",
            app.config["CAMPAIGN_CHECK_SECONDS"],
        ),
        PeriodicJob(
            "herald-follow-ups",
            "app.jobs.results.send_follow_ups",
            app.config["CAMPAIGN_CHECK_SECONDS"],
        ),
        PeriodicJob(
            "herald-rollups",
            "app.jobs.rollups.apply_rollups",
            app.config["ROLLUP_INTERVAL_SECONDS"],
        ),
        PeriodicJob(
            "herald-retention",
            "app.jobs.retention.purge_events",
            app.config["RETENTION_INTERVAL_SECONDS"],
            timeout=3600,
        ),
        PeriodicJob(
            "herald-import-uploads",
            "app.jobs.imports.discard_stale_uploads",
            app.config["IMPORT_HOUSEKEEPING_SECONDS"],
        ),
    ]


def sync(scheduler: Scheduler, jobs: list[PeriodicJob]) -> dict[str, list[str]]:
    """Make the scheduler's periodic entries match `jobs` exactly."""
    wanted = {job.id: job for job in jobs}
    report: dict[str, list[str]] = {"added": [], "kept": [], "changed": [], "removed": []}
    existing = {j.id: j for j in scheduler.get_jobs() if MARK in j.meta}
    for job_id, job in existing.items():
        if job_id not in wanted:
            scheduler.cancel(job)
            job.delete()
            report["removed"].append(job_id)
    for job_id, job in wanted.items():
        current = existing.get(job_id)
        if current is not None and current.meta.get(MARK) == job.signature:
            report["kept"].append(job_id)
            continue
        if current is not None:
            scheduler.cancel(current)
            report["changed"].append(job_id)
        else:
            report["added"].append(job_id)
        scheduler.schedule(
            scheduled_time=datetime.now(UTC).replace(tzinfo=None),
            func=job.func,
            interval=job.interval,
            repeat=None,
            id=job.id,
            queue_name=job.queue,
            timeout=job.timeout,
            result_ttl=600,
            meta={MARK: job.signature},
        )
    return report


class HeraldScheduler(Scheduler):
    """rq-scheduler that re-syncs the declared periodic jobs every minute."""

    resync_seconds = 60.0

    def __init__(self, app: Flask, **kwargs: object) -> None:
        super().__init__(queue_name=PERIODIC, **kwargs)
        self.app = app
        self._synced_at = 0.0

    def enqueue_jobs(self):  # noqa: ANN201 - rq-scheduler's signature
        """Re-sync when due, then move due jobs to their queues."""
        if time.monotonic() - self._synced_at >= self.resync_seconds:
            report = sync(self, declared(self.app))
            if report["added"] or report["changed"] or report["removed"]:
                log.info("periodic jobs synced: %s", report)
            self._synced_at = time.monotonic()
        return super().enqueue_jobs()
