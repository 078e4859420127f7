"""Public tracking endpoints: answer fast, record one event, never redirect anywhere the signed
link does not say. A cut or altered link gets a clear 400 and is counted in /metrics."""

from __future__ import annotations

import logging

from flask import Response, redirect, render_template, request
from flask.typing import ResponseReturnValue

from app.extensions import csrf
from app.mail.metrics import count_reject
from app.mail.tracked_links import GIF, BadTrackingLink, read_click, read_open
from app.tracking import bp
from app.tracking.record import record_click, record_open
from app.tracking.rules import classify_click, classify_open

log = logging.getLogger(__name__)


def _detail() -> dict:
    # a machine's event also gets the version of the rules that called it one (store.py)
    return {"ua": (request.user_agent.string or "")[:300]}


def _bad(kind: str) -> ResponseReturnValue:
    count_reject("tracking", kind)
    return render_template("public/bad_link.html"), 400


@bp.route("/t/o/<token>.gif", methods=["GET"])
@csrf.exempt
def pixel(token: str) -> ResponseReturnValue:
    try:
        message_id = read_open(token)
    except BadTrackingLink:
        return _bad("pixel")
    reason = classify_open(request.method, request.user_agent.string, request.remote_addr)
    record_open(message_id, reason, _detail())
    response = Response(GIF, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store, max-age=0"
    return response


@bp.route("/t/c/<token>", methods=["GET"])
@csrf.exempt
def click(token: str) -> ResponseReturnValue:
    try:
        message_id, url = read_click(token)
    except BadTrackingLink:
        return _bad("click")
    # the agent is judged here; "clicked right after sending" in the recording statement
    reason = classify_click(request.method, request.user_agent.string, request.remote_addr, None)
    try:
        record_click(message_id, url, reason, _detail())
    except Exception:  # noqa: BLE001 - the candidate still gets where the link points
        log.exception("tracking: a click could not be spooled; redirected anyway")
        count_reject("tracking", "click_unrecorded")
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
