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


DEFAULT_RETRY_AFTER = "60"  # a 429 raised without its own wait (app.limits always gives one)


def _render(code: int, message: str, headers: dict[str, str] | None = None):  # noqa: ANN202
    title = TITLES.get(code, "Something went wrong")
    if request.headers.get("HX-Request"):
        return render_template("_error_fragment.html", title=title, message=message), code, headers
    page = render_template("error.html", code=code, title=title, message=message)
    return page, code, headers


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
        headers = None
        if error.code == 429:  # every 429 says when to come back
            retry = dict(error.get_headers()).get("Retry-After", DEFAULT_RETRY_AFTER)
            headers = {"Retry-After": retry}
        return _render(error.code, default or error.description or "", headers)

    if app.testing:
        return  # let tests see real exceptions

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # noqa: ANN202
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _render(500, InternalServerError.description)
