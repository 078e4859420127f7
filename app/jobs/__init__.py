"""RQ job functions: importable, taking ids only, each run inside an app context."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, has_app_context

from app import create_app
from app.extensions import db

_app: Flask | None = None


def _job_app() -> Flask:
    """The worker's app if one is active, else one built once per process (plain `rq worker`)."""
    global _app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _app is None:
        _app = create_app()
    return _app


def with_app_context(fn: Callable) -> Callable:
    """Run a job in a fresh app context: its own DB session, removed when the job ends."""

    @wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with _job_app().app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapped
