"""RQ job functions: importable, taking ids only, each run inside an app context."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, has_app_context

_app: Flask | None = None


def with_app_context(fn: Callable) -> Callable:
    """Run a job inside the app (the worker's, or one built once per process) with a clean session."""

    @wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        from app.extensions import db

        if has_app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()
        global _app
        if _app is None:
            from app import create_app

            _app = create_app()
        with _app.app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapped
