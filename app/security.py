"""Security headers on every response, and the login manager's user loader (app/sessions.py)."""

from __future__ import annotations

from flask import Flask, Response, abort, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from app import sessions
from app.extensions import login_manager

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


class BoundedInt(IntegerConverter):
    """<int:...> URL parts stop at the largest BIGINT: a larger id is a 404, not a DB error."""

    def __init__(self, url_map, *args, **kwargs) -> None:  # noqa: ANN001
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


# Pages that show an email preview in a sandboxed srcdoc iframe: the email's inline styles and
# remote images are allowed there; scripts are still only our own.
PREVIEW_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: http: https:; frame-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'"
)


def init_app(app: Flask) -> None:
    """Install the user loader, input guards, proxy handling and the after-request headers."""
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    @app.before_request
    def refuse_nul_bytes() -> None:
        """PostgreSQL cannot store NUL characters: say so instead of failing."""
        pairs = [*request.args.items(multi=True), *request.form.items(multi=True)]
        if any("\x00" in value for _key, value in pairs):  # every value of a repeated key
            abort(400, description="The form contains an invalid character (NUL). Remove it.")

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(token: str):  # noqa: ANN202
        """The cookie names a session row; only a live one logs the browser in."""
        return sessions.user_for(token)

    @app.after_request
    def headers(response: Response) -> Response:
        """CSP without inline scripts, no framing (except our sandboxed previews), no sniffing."""
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.vary.add("HX-Request")
        if request.endpoint != "static" and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
