"""The common path of a send in as few round trips as it can take: one statement per message.

Beginning a message (lease, campaign, answer and suppression checked, the attempt counted) and
recording the message before it as plainly sent (row and events) go to PostgreSQL as one
statement, prepared once per connection. The record of an accepted send is therefore committed
just before the next message is begun, and always before it goes on the wire: a worker killed
at any moment leaves at most one message sent and unrecorded.

Everything else (a stop, a suppression, a retry, a failover, a lost lease) takes the exact ORM
path in app.mail.sending.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from flask import current_app

from app import clock
from app.extensions import db
from app.mail.delivery import Attempt

log = logging.getLogger(__name__)

_BEGIN = """
cur AS (
    SELECT m.id, m.kind, m.campaign_id,
           (SELECT c.status FROM campaigns c WHERE c.id = m.campaign_id) AS campaign_status,
           (SELECT i.status FROM invitations i WHERE i.id = m.invitation_id) AS answer,
           EXISTS (SELECT 1 FROM suppressions s
                   WHERE s.org_id = m.org_id AND s.email = lower(trim(m.to_email))) AS listed
    FROM messages m
    WHERE m.id = %(id)s AND m.status = 'sending' AND m.lease_token = %(token)s
    FOR UPDATE OF m
), began AS (
    UPDATE messages SET attempts = messages.attempts + 1, lease_until = %(until)s
    FROM cur
    WHERE messages.id = cur.id AND NOT cur.listed AND (
        cur.campaign_id IS NULL OR cur.kind IN ('cancelled', 'rescheduled') OR (
            coalesce(cur.campaign_status, '') NOT IN ('paused', 'cancelled')
            AND coalesce(cur.answer, '') NOT IN ('revoked', 'superseded')
            AND NOT (cur.kind = 'reminder'
                     AND coalesce(cur.answer, '') IN ('accepted', 'declined'))))
    RETURNING messages.id
)"""
_SENT = """
recorded AS (
    UPDATE messages SET status = 'sent', sent_at = %(now)s, subject = %(subject)s,
        provider = %(provider)s, provider_account_id = %(account)s,
        provider_message_id = %(provider_id)s, provider_response = %(response)s,
        last_error = NULL, lease_until = NULL, lease_token = NULL,
        delivered_at = CASE WHEN %(smtp)s THEN %(now)s ELSE delivered_at END,
        delivery = CASE WHEN %(smtp)s THEN coalesce(delivery, 'delivered') ELSE delivery END
    WHERE id = %(sent_id)s AND status = 'sending' AND lease_token = %(token)s
    RETURNING id, org_id
), sent_events AS (
    INSERT INTO events (org_id, message_id, type, detail, created_at)
    SELECT recorded.org_id, recorded.id, e.type, CAST(e.detail AS jsonb), %(now)s
    FROM recorded, (VALUES ('sent', %(sent)s), ('delivered', %(delivered)s)) AS e(type, detail)
    WHERE e.type = 'sent' OR %(smtp)s
    RETURNING message_id
)"""
_ONLY_BEGIN = f"WITH {_BEGIN} SELECT true, EXISTS (SELECT 1 FROM began)"
_ONLY_SENT = f"WITH {_SENT} SELECT EXISTS (SELECT 1 FROM recorded), true"
_SENT_THEN_BEGIN = (
    f"WITH {_SENT}, {_BEGIN} SELECT EXISTS (SELECT 1 FROM recorded), EXISTS (SELECT 1 FROM began)"
)


def sent_events(attempt: Attempt) -> tuple[dict, dict | None]:
    """The details of an accepted send's events: 'sent', and 'delivered' when the provider was
    SMTP (the receiving server's 250 is delivery). One place for both recording paths."""
    label = attempt.route.label
    sent = {"provider": label, "response": attempt.result.response, "ms": round(attempt.ms, 1)}
    delivered = {"provider": label, "via": "smtp"} if attempt.route.name == "smtp" else None
    return sent, delivered


@dataclass
class _Accepted:
    message_id: int
    attempt: Attempt
    subject: str | None


class FastPath:
    """The batch's two autocommit connections for the common path."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.lost: list[int] = []  # accepted sends whose lease was gone when recorded
        self._accepted: _Accepted | None = None
        # Two connections: a begin alone need not reach the disk before the send (an attempt
        # counter may be lost in a database crash); a record must, with what it carries.
        self.conns = [
            db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") for _ in (1, 2)
        ]
        self.lazy, self.durable = (c.connection.driver_connection for c in self.conns)
        self.lazy.execute("SET synchronous_commit = off")
        for raw in (self.lazy, self.durable):  # never wait long on a row this session holds
            raw.execute("SET lock_timeout = '30s'")

    def accepted(self, message_id: int, attempt: Attempt, subject: str | None) -> None:
        """A plain accepted send, recorded with the next begin (or flush, at the latest)."""
        self.flush()
        self._accepted = _Accepted(message_id, attempt, subject)

    def begin(self, message_id: int) -> bool:
        """Lease held, still wanted, not suppressed: the attempt is counted (and the send
        before it recorded, in the same statement)."""
        until = clock.now() + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
        params = {"id": message_id, "token": self.token, "until": until}
        if self._accepted is None:
            return self._run(self.lazy, _ONLY_BEGIN, params)[1]
        return self._record(_SENT_THEN_BEGIN, params)[1]

    def flush(self) -> None:
        """Record the accepted send waiting, if any (end of batch, or before anything else)."""
        if self._accepted is not None:
            self._record(_ONLY_SENT, {"token": self.token})

    def _record(self, sql: str, params: dict) -> tuple[bool, bool]:
        accepted, self._accepted = self._accepted, None
        result = accepted.attempt.result
        sent, delivered = sent_events(accepted.attempt)
        params |= {
            "sent_id": accepted.message_id,
            "now": clock.now(),
            "subject": accepted.subject,
            "provider": accepted.attempt.route.name,
            "account": accepted.attempt.route.account_id,
            "provider_id": result.provider_id,
            "response": result.response,
            "smtp": delivered is not None,
            "sent": json.dumps(sent),
            "delivered": json.dumps(delivered),
        }
        recorded, began = self._run(self.durable, sql, params)
        if not recorded:
            self.lost.append(accepted.message_id)
            log.warning("message %s: lease lost before its send was recorded", accepted.message_id)
        return recorded, began

    @staticmethod
    def _run(conn: psycopg.Connection, sql: str, params: dict) -> tuple[bool, bool]:
        row = conn.execute(sql, params, prepare=True).fetchone()
        return bool(row[0]), bool(row[1])

    def close(self) -> None:
        try:
            for raw in (self.lazy, self.durable):  # before they go back to the pool
                raw.execute("RESET synchronous_commit; RESET lock_timeout")
        except psycopg.Error:
            for conn in self.conns:
                conn.invalidate()  # not back into the pool with the settings
        for conn in self.conns:
            conn.close()
