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
import re
import select
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from flask import current_app
from psycopg import errors, generators, pq

from app import clock
from app.extensions import db
from app.mail.delivery import Attempt

log = logging.getLogger(__name__)

# The begin: one UPDATE whose conditions read what could stop the message. Its suppression
# test keeps OFFSET 0 so that PostgreSQL runs it as a subplan per row rather than an anti
# join: when the row changed under a concurrent update, the re-check then reads the
# suppressions again for the row as it is now.
_BEGIN = """
began AS (
    UPDATE messages m SET attempts = m.attempts + 1, lease_until = %(until)s::timestamptz
    WHERE m.id = %(id)s::bigint AND m.status = 'sending' AND m.lease_token = %(token)s::text
      AND NOT EXISTS (SELECT 1 FROM suppressions s
                      WHERE s.org_id = m.org_id AND s.email = lower(trim(m.to_email))
                      OFFSET 0)
      AND (m.campaign_id IS NULL OR m.kind IN ('cancelled', 'rescheduled') OR (
          coalesce((SELECT c.status FROM campaigns c WHERE c.id = m.campaign_id), '')
              NOT IN ('paused', 'cancelled')
          AND coalesce((SELECT i.status FROM invitations i WHERE i.id = m.invitation_id), '')
              NOT IN ('revoked', 'superseded')
          AND NOT (m.kind = 'reminder' AND coalesce(
              (SELECT i.status FROM invitations i WHERE i.id = m.invitation_id), '')
              IN ('accepted', 'declined'))))
    RETURNING m.id
)"""
_SENT = """
recorded AS (
    UPDATE messages SET status = 'sent', sent_at = %(now)s::timestamptz,
        subject = %(subject)s::text, provider = %(provider)s::text,
        provider_account_id = %(account)s::integer,
        provider_message_id = %(provider_id)s::text, provider_response = %(response)s::text,
        last_error = NULL, lease_until = NULL, lease_token = NULL,
        delivered_at = CASE WHEN %(smtp)s::boolean THEN %(now)s ELSE delivered_at END,
        delivery = CASE WHEN %(smtp)s THEN coalesce(delivery, 'delivered') ELSE delivery END
    WHERE id = %(sent_id)s::bigint AND status = 'sending' AND lease_token = %(token)s::text
    RETURNING id, org_id
), sent_events AS (
    INSERT INTO events (org_id, message_id, type, detail, created_at)
    SELECT recorded.org_id, recorded.id, e.type, CAST(e.detail AS jsonb), %(now)s
    FROM recorded,
        (VALUES ('sent', %(sent)s::text), ('delivered', %(delivered)s::text)) AS e(type, detail)
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


def _numbered(sql: str) -> tuple[bytes, list[str]]:
    """The statement with $1, $2... for PREPARE, and the parameter names in that order."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\((\w+)\)s", number, sql).encode(), names


_STATEMENTS = {
    b"herald_fast_begin": _numbered(_ONLY_BEGIN),
    b"herald_fast_sent": _numbered(_ONLY_SENT),
    b"herald_fast_sent_begin": _numbered(_SENT_THEN_BEGIN),
}


def _text(value: object) -> bytes | None:
    """A parameter in PostgreSQL's text format."""
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode()


class FastPath:
    """The batch's two autocommit connections for the common path. A begin is sent without
    waiting for its answer (send_begin, then began): PostgreSQL runs it, and its commit reaches
    the disk, while the worker builds the message."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.lost: list[int] = []  # accepted sends whose lease was gone when recorded
        self._accepted: _Accepted | None = None
        self._waiting: tuple[psycopg.Connection, _Accepted | None] | None = None
        self._prepared: set[tuple[int, bytes]] = set()
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

    def send_begin(self, message_id: int) -> None:
        """Ask to begin this message (lease held, still wanted, not suppressed: the attempt is
        counted), with the send before it recorded in the same statement; answered by began()."""
        self._flush_answer()
        until = clock.now() + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
        params = {"id": message_id, "token": self.token, "until": until}
        accepted = self._accepted
        if accepted is None:
            self._send(self.lazy, b"herald_fast_begin", params, None)
        else:
            params |= _recorded(accepted)
            self._send(self.durable, b"herald_fast_sent_begin", params, accepted)
            self._accepted = None  # the statement carries it now (put back if it fails)

    def began(self) -> bool:
        """Whether the message asked for by send_begin may go (its attempt is counted)."""
        return self._answer()[1]

    def answered(self) -> bool:
        """Whether began() would answer without waiting: its answer has arrived (a peek)."""
        if self._waiting is None:
            return True
        conn = self._waiting[0]
        return bool(select.select([conn.pgconn.socket], [], [], 0)[0])

    def _flush_answer(self) -> None:
        """Read the answer to a statement sent and not yet answered (it holds a record)."""
        if self._waiting is not None:
            self._answer()

    def flush(self) -> None:
        """Record the accepted send waiting, if any (end of batch, or before anything else)."""
        try:
            self._flush_answer()
        except Exception:  # noqa: BLE001 - its record, if it carried one, is retried below
            if self._accepted is None:
                raise
        accepted = self._accepted
        if accepted is not None:
            params = {"token": self.token} | _recorded(accepted)
            self._send(self.durable, b"herald_fast_sent", params, accepted)
            self._accepted = None
            self._answer()

    def _send(
        self, conn: psycopg.Connection, name: bytes, params: dict, accepted: _Accepted | None
    ) -> None:
        sql, names = _STATEMENTS[name]
        if (id(conn), name) not in self._prepared:
            conn.execute(b"PREPARE " + name + b" AS " + sql)
            self._prepared.add((id(conn), name))
        conn.pgconn.send_query_prepared(name, [_text(params[n]) for n in names])
        conn.wait(generators.send(conn.pgconn))
        self._waiting = (conn, accepted)

    def _answer(self) -> tuple[bool, bool]:
        conn, accepted = self._waiting  # type: ignore[misc]
        self._waiting = None
        try:
            results = conn.wait(generators.fetch_many(conn.pgconn))
            if not results:
                raise psycopg.OperationalError("no answer to the send path's statement")
            if results[0].status != pq.ExecStatus.TUPLES_OK:
                raise errors.error_from_result(results[0], encoding=conn.pgconn._encoding)
        except Exception:
            # the statement failed whole: the send it carried is not recorded yet (flush
            # records it alone); the begin it carried did not happen
            if accepted is not None:
                self._accepted = accepted
            raise
        recorded, began = (results[0].get_value(0, i) == b"t" for i in (0, 1))
        if accepted is not None and not recorded:
            self.lost.append(accepted.message_id)
            log.warning("message %s: lease lost before its send was recorded", accepted.message_id)
        return recorded, began

    def close(self) -> None:
        try:
            if self._waiting is not None:
                raise psycopg.OperationalError("a statement was left unanswered")
            for raw in (self.lazy, self.durable):  # before they go back to the pool
                raw.execute("RESET synchronous_commit; RESET lock_timeout")
                for conn_id, name in self._prepared:
                    if conn_id == id(raw):
                        raw.execute(b"DEALLOCATE " + name)
        except Exception:  # noqa: BLE001 - whatever it was, not back into the pool like this
            for conn in self.conns:
                conn.invalidate()  # (settings and prepared statements would stay)
        for conn in self.conns:
            conn.close()


def _recorded(accepted: _Accepted) -> dict:
    """The parameters that record an accepted send."""
    result = accepted.attempt.result
    sent, delivered = sent_events(accepted.attempt)
    return {
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
