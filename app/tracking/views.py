"""Views of a candidate's invitation page, recorded as a 'viewed' event on the invitation's
message and judged by the same rules as a click (a scanner following the link right after
delivery, a crawler's agent, a HEAD request: kept and flagged as a machine). Spooled like a click,
so the page does not wait on the database."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.mail.metrics import count_reject
from app.models import Campaign, Message
from app.tenancy import ALL_ORGS
from app.tracking.record import writer
from app.tracking.rules import classify_click

log = logging.getLogger(__name__)


def invitation_message(invitation_id: int) -> int | None:
    """The invitation email's id (the first written for the invitation; reminders and notices
    come later), if its campaign tracks: the tracking switch turns views off too."""
    return db.session.scalar(
        select(Message.id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.invitation_id == invitation_id,
            Campaign.tracking_enabled.is_(True),
        )
        .order_by(Message.id)
        .limit(1)
        .execution_options(**ALL_ORGS)
    )


def record_view(invitation_id: int, method: str, user_agent: str | None, ip: str | None) -> None:
    """Spool one view of the page; a failure is logged and counted, the page is still shown."""
    try:
        message_id = invitation_message(invitation_id)
        if message_id is None:
            return
        reason = classify_click(method, user_agent, ip, None)
        config = current_app.config
        writer().append(
            "viewed",
            message_id,
            reason,
            {"ua": (user_agent or "")[:300]},
            window=config["SCANNER_CLICK_SECONDS"],
            wait=config["TRACKING_WAIT_FOR_STORE"],
        )
    except Exception:  # noqa: BLE001 - the candidate's page matters more than the count
        log.exception("tracking: a view of an invitation page could not be spooled")
        count_reject("tracking", "view_unrecorded")
