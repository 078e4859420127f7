"""Views of a candidate's invitation page, recorded as a 'viewed' event on the invitation's
email and judged by the same rules as a click (a scanner following the link right after
delivery, a crawler's agent, a HEAD request: kept and flagged as a machine). The page only
appends a line to the spool, as a click does, and answers: the writer finds the invitation's
email (and skips campaigns with tracking off) in the statement that stores the hit."""

from __future__ import annotations

import logging

from flask import current_app

from app.mail.metrics import count_reject
from app.tracking.record import writer
from app.tracking.rules import classify_click

log = logging.getLogger(__name__)


def record_view(invitation_id: int, method: str, user_agent: str | None, ip: str | None) -> None:
    """Spool one view of the page; a failure is logged and counted, the page is still shown."""
    try:
        config = current_app.config
        writer().append(
            "viewed",
            invitation_id,
            classify_click(method, user_agent, ip, None),
            {"ua": (user_agent or "")[:300]},
            window=config["SCANNER_CLICK_SECONDS"],
            wait=config["TRACKING_WAIT_FOR_STORE"],
        )
    except Exception:  # noqa: BLE001 - the candidate's page matters more than the count
        log.exception("tracking: a view of an invitation page could not be spooled")
        count_reject("tracking", "view_unrecorded")
