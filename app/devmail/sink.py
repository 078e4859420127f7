"""The development SMTP sink (aiosmtpd): accepts everything on 127.0.0.1, relays nothing."""

from __future__ import annotations

import logging

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.devmail import store

log = logging.getLogger(__name__)


class StoringHandler:
    """Stores every mail it receives in a folder the mailbox page reads."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    async def handle_EHLO(  # noqa: N802, PLR0913
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list[str]:
        """aiosmtpd takes commands in groups (in order) without saying so: say so, like the
        relays Herald sends through in production, so the dev setup sends the same way."""
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")  # before the last line, "250 HELP"
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        key = store.save(self.directory, raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        log.info("dev mailbox stored %s (%d bytes)", key, len(raw))
        return "250 Message accepted for delivery"


def start_sink(directory: str, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the sink in a background thread; call .stop() on the result."""
    controller = Controller(
        StoringHandler(directory), hostname=host, port=port, data_size_limit=25 * 1024 * 1024
    )
    controller.start()
    return controller
