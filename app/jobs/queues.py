"""Queue names in one place, and the one queue factory (explicit connection, as RQ 2 wants)."""

from __future__ import annotations

from rq import Queue

from app.extensions import redis

SEND = "herald-send"
DEFAULT = "herald-default"
ALL = (SEND, DEFAULT)


def queue(name: str) -> Queue:
    """An RQ queue on the app's Redis."""
    return Queue(name, connection=redis.client)


def send_queue() -> Queue:
    return queue(SEND)


def default_queue() -> Queue:
    return queue(DEFAULT)
