"""Error pages: every 4xx/5xx is a readable page (or a short fragment for HTMX), never a trace."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

TITLES = {
    400: "That request could not be understood",
    403: "You don't have access to this",
    404: "Not found",
    405: "That action is not allowed here",
    413: "That upload is too large",
    429: "Too many attempts",
}


def _render(code: int, message: str):  # noqa: ANN202
    title = TITLES.get(code, "Something went wrong")
    if request.headers.get("HX-Request"):
        return render_template("_error_fragment.html", title=title, message=message), code
    return render_template("error.html", code=code, title=title, message=message), code


def init_app(app: Flask) -> None:
    """Register handlers for HTTP errors, CSRF failures and unexpected exceptions."""

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):  # noqa: ANN202
        return _render(
            400, "Your form expired or was sent from elsewhere. Reload the page and try again."
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # noqa: ANN202
        if error.code is None or error.code < 400:
            return error
        default = error.code == 404 and "We couldn't find that page. It may have been removed."
        return _render(error.code, default or error.description or "")

    if app.testing:
        return  # let tests see real exceptions

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # noqa: ANN202
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _render(500, InternalServerError.description)
