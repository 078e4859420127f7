"""The results list as CSV, streamed: rows come from a server-side cursor a thousand at a time
and leave as they are written, so memory stays flat however many recipients there are. Every
cell a person typed goes through the CSV-injection guard."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Response, stream_with_context

from app import clock
from app.csvsafe import neutralise
from app.extensions import db
from app.models import Campaign
from app.results import query
from app.results.query import ATTENDANCE, LABELS

CHUNK = 1000
HEADER = (
    "name",
    "email",
    "state",
    "decline_reason",
    "decline_note",
    "no_slot_fits_note",
    "answered_at",
    "interview_starts_at",
    "interview_ends_at",
    "invitation_viewed_at",
    "email_status",
    "attendance",
    "follow_up_sent_at",
)


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(timespec="minutes") if value else ""


def _cells(r, zone: ZoneInfo) -> list[str]:  # noqa: ANN001 - a result row
    email_status = "bounced" if r.bounced_at else (r.delivery or r.message_status or "")
    typed = [
        f"{r.first_name} {r.last_name}".strip(),
        r.email,
        LABELS[r.state],
        query.reason_label(r.decline_reason),
        r.decline_note or "",
        r.no_slot_fits_note or "",
    ]
    return [neutralise(c) for c in typed] + [
        _when(r.responded_at if r.state in ("booked", "declined") else None, zone),
        _when(r.starts_at if r.state == "booked" else None, zone),
        _when(r.ends_at if r.state == "booked" else None, zone),
        _when(r.human_viewed_at, zone),
        email_status,
        ATTENDANCE.get(r.attended or "", ""),
        _when(r.followed_up_at, zone),
    ]


def lines(campaign: Campaign, state: str | None, q: str | None, zone: str) -> Iterator[str]:
    """The CSV text, a chunk of rows at a time (times in the org's zone, with their offset)."""
    tz = ZoneInfo(zone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    rows = query.narrowed(query.recipients(campaign), state, q)
    result = db.session.execute(rows.execution_options(yield_per=CHUNK))
    for chunk in result.partitions():
        for r in chunk:
            writer.writerow(_cells(r, tz))
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def filename(campaign: Campaign, state: str | None) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", campaign.name.lower()).strip("-")[:60] or "campaign"
    day = clock.now().date().isoformat()
    return f"herald-results-{slug}{'-' + state if state else ''}-{day}.csv"


def response(campaign: Campaign, state: str | None, q: str | None, zone: str) -> Response:
    """A streamed download of the recipients the filters select."""
    return Response(
        stream_with_context(lines(campaign, state, q, zone)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename(campaign, state)}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
