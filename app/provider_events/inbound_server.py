"""The aiosmtpd server for inbound mail: RCPT only for our own local parts (at BOUNCE_DOMAIN when
it is set), a size cap, never relays. Each mail is handled in an app context."""

from __future__ import annotations

import logging

from aiosmtpd.controller import Controller
from flask import Flask

from app.extensions import db
from app.provider_events.inbound_mail import handle

log = logging.getLogger(__name__)


class InboundHandler:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.domain = (app.config["BOUNCE_DOMAIN"] or "").lower() or None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802, ANN001, ANN201
        local, _, domain = address.rpartition("@")
        if self.domain and domain.lower() != self.domain:
            return "550 5.7.1 Relaying denied"
        if not (local.lower().startswith("bounces+") or local.lower() == "unsubscribe"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        raw = envelope.original_content or envelope.content
        with self.app.app_context():
            for rcpt in envelope.rcpt_tos:
                try:
                    outcome = handle(rcpt.rpartition("@")[0], raw)
                    db.session.commit()
                except Exception:  # noqa: BLE001 - never bounce a bounce; log and move on
                    db.session.rollback()
                    log.exception("inbound mail could not be handled")
                    outcome = "error"
                log.info("inbound mail: %s", outcome)
        return "250 OK"


def start(app: Flask, host: str | None = None, port: int | None = None) -> Controller:
    """Start listening (in a thread); stop() the returned controller to end."""
    cfg = app.config
    controller = Controller(
        InboundHandler(app),
        hostname=host or cfg["INBOUND_HOST"],
        port=port or cfg["INBOUND_PORT"],
        data_size_limit=cfg["INBOUND_MAX_BYTES"],
    )
    controller.start()
    return controller
