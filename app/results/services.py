"""A campaign's results: one page of recipients, the counts per state, the figures the campaign
page shows beside delivery, and the recruiter's attended / no-show mark after the interview."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from app import clock
from app.audit import audit
from app.extensions import db
from app.models import Booking, Campaign, EmailTemplate, Invitation, Organization, User
from app.results import query
from app.results.query import ATTENDANCE, LABELS

PAGE = 50


class ResultsError(Exception):
    """A mark or a setting the campaign cannot take (said to the recruiter as it is)."""


@dataclass
class Page:
    rows: list[Any]
    total: int  # recipients matching the filters
    page: int
    pages: int
    counts: dict[str, int] = field(default_factory=dict)  # per state, the whole campaign

    @property
    def everyone(self) -> int:
        return sum(self.counts.values())


def _tally(campaign: Campaign) -> dict[str, tuple[int, int, int]]:
    rows = db.session.execute(query.by_state(query.recipients(campaign))).all()
    return {state: (int(n), int(viewed), int(machines)) for state, n, viewed, machines in rows}


def counts(campaign: Campaign, tally: dict | None = None) -> dict[str, int]:
    """Recipients per state, every state present (zero where none)."""
    tally = _tally(campaign) if tally is None else tally
    return {key: tally.get(key, (0, 0, 0))[0] for key in LABELS}


def page(campaign: Campaign, state: str | None, q: str | None, number: int) -> Page:
    """One page of PAGE recipients in send order, narrowed to a state and a search."""
    rows = query.narrowed(query.recipients(campaign), state, q)
    everything = counts(campaign)
    if state in LABELS and not q:
        total = everything[state]
    elif state is None and not q:
        total = sum(everything.values())
    else:
        total = db.session.scalar(select(func.count()).select_from(rows.subquery()))
    pages = max((total + PAGE - 1) // PAGE, 1)
    number = min(max(number, 1), pages)
    found = db.session.execute(rows.limit(PAGE).offset((number - 1) * PAGE)).all()
    return Page(found, total, number, pages, everything)


def summary(campaign: Campaign) -> dict[str, int]:
    """Views of the invitation page, bookings and no-replies, for the campaign page."""
    tally = _tally(campaign)
    per_state = counts(campaign, tally)
    return {
        "viewed": sum(v[1] for v in tally.values()),
        "viewed_by_machines_only": sum(v[2] for v in tally.values()),
        "booked": per_state["booked"],
        "no_reply": per_state["pending"],
        "declined": per_state["declined"],
        "no_slot_fits": per_state["no_slot_fits"],
        "recipients": sum(per_state.values()),
    }


def recipient(campaign: Campaign, invitation_id: int) -> Any | None:
    """One recipient's row, if the invitation is this campaign's."""
    rows = query.narrowed(query.recipients(campaign), None, None)
    inner = rows.selected_columns
    return db.session.execute(rows.where(inner.invitation_id == invitation_id)).first()


def can_mark(row: Any) -> bool:
    """Attendance is marked for a booked or accepted candidate, once the interview ended."""
    return row.state == "booked" and row.ends_at is not None and row.ends_at <= clock.now()


def mark_attendance(org: Organization, campaign: Campaign, invitation_id: int, value: str) -> Any:
    """Attended or no-show: on the booking for a slots campaign, on the invitation for a fixed
    time. Returns the recipient's row as it is now; the caller commits."""
    if value not in ATTENDANCE:
        raise ResultsError("Choose attended or no-show.")
    row = recipient(campaign, invitation_id)
    if row is None:
        return None
    if row.state != "booked":
        raise ResultsError("Only a candidate who booked or accepted can be marked.")
    if not can_mark(row):
        raise ResultsError("Attendance can be marked once the interview has ended.")
    if campaign.scheduling == "slots":
        db.session.execute(
            update(Booking)
            .where(
                Booking.org_id == org.id,
                Booking.invitation_id == invitation_id,
                Booking.status == "active",
            )
            .values(attended=value)
        )
    else:
        db.session.execute(
            update(Invitation)
            .where(Invitation.org_id == org.id, Invitation.id == invitation_id)
            .values(attended=value)
        )
    return recipient(campaign, invitation_id)


def follow_up_templates(org: Organization) -> list[EmailTemplate]:
    """Templates a follow-up can use: the org's follow-up and custom ones, with a version."""
    return db.session.scalars(
        select(EmailTemplate)
        .where(
            EmailTemplate.org_id == org.id,
            EmailTemplate.deleted_at.is_(None),
            EmailTemplate.kind.in_(("follow_up", "custom")),
            EmailTemplate.current_version_id.is_not(None),
        )
        .order_by(EmailTemplate.kind, EmailTemplate.name)
    ).all()


MAX_FOLLOW_UP_HOURS = 24 * 14


def set_follow_up(
    org: Organization, campaign: Campaign, user: User, template_id: int | None, hours: int
) -> None:
    """Choose the follow-up (or none) and how many hours after the interview it goes."""
    if not 1 <= hours <= MAX_FOLLOW_UP_HOURS:
        raise ResultsError(f"Send the follow-up between 1 and {MAX_FOLLOW_UP_HOURS} hours after.")
    if template_id is not None and template_id not in {t.id for t in follow_up_templates(org)}:
        raise ResultsError("Choose one of your follow-up templates.")
    campaign.follow_up_template_id, campaign.follow_up_hours = template_id, hours
    audit(org.id, user, "campaign.follow_up_changed", campaign=campaign.name, hours=hours)
