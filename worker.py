"""Start an RQ worker for Herald's queues: `python worker.py [--burst]`.

One non-forking worker per process (jobs send batches; forking would cost ~15 ms a job). Run as
many processes as you need, on any host that reaches the same Redis and PostgreSQL. Each serves the
periodic queue first, then sends, then the rest (app/queues.py): send jobs hand their worker
back every DISPATCH_MAX_SECONDS, so periodic jobs start on time whatever the backlog.
"""

from __future__ import annotations

import argparse

from rq import SimpleWorker

from app import create_app
from app.extensions import redis
from app.queues import ALL, queue


def main() -> None:
    """Parse flags, build the app, and work the queues inside its app context."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    parser.add_argument("--max-jobs", type=int, default=None, help="recycle after N jobs")
    args = parser.parse_args()
    app = create_app()
    with app.app_context():
        worker = SimpleWorker([queue(name) for name in ALL], connection=redis.client)
        worker.work(burst=args.burst, max_jobs=args.max_jobs, with_scheduler=True)


if __name__ == "__main__":
    main()
