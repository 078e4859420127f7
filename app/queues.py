"""Queue names in one place, and the one queue factory (explicit connection, as RQ 2 wants).

Every worker serves the queues in the order of ALL: periodic jobs first (sweeper, due campaigns,
reminders, rollups, retention), so a send backlog never holds them back; then sends; then the rest
(imports). RQ pops the first non-empty queue in that order each time a worker is free.
"""

from __future__ import annotations

from rq import Queue

from app.extensions import redis

PERIODIC = "herald-periodic"
SEND = "herald-send"
DEFAULT = "herald-default"
ALL = (PERIODIC, SEND, DEFAULT)


def queue(name: str) -> Queue:
    """An RQ queue on the app's Redis."""
    return Queue(name, connection=redis.client)


def send_queue() -> Queue:
    return queue(SEND)


def default_queue() -> Queue:
    return queue(DEFAULT)
