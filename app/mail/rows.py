"""Rows a sending batch reads for every message (org, campaign, template version, sender),
looked up once per batch: within a batch the session keeps them loaded anyway (see
sending.send_claimed), and the session's own lookup costs tens of microseconds a call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from app.extensions import db

T = TypeVar("T")
_batch: ContextVar[dict | None] = ContextVar("herald_batch_rows", default=None)


@contextmanager
def batch() -> Iterator[None]:
    """Remember rows (and what is made from them) until the batch ends."""
    token = _batch.set({})
    try:
        yield
    finally:
        _batch.reset(token)


def get(model: type[T], id_: Any) -> T | None:
    """db.session.get, once per batch."""
    return remember((model, id_), lambda: db.session.get(model, id_))


def remember(key: Any, make: Callable[[], T]) -> T:
    """make(), once per batch for this key (every time outside a batch)."""
    rows = _batch.get()
    if rows is None:
        return make()
    if key not in rows:
        rows[key] = make()
    return rows[key]


def seed(model: type, instances: Iterator[Any] | list[Any]) -> None:
    """Rows the batch loaded together (by primary key `id`), so get() finds them at once."""
    rows = _batch.get()
    if rows is not None:
        for instance in instances:
            rows[(model, instance.id)] = instance
