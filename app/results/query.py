"""Where each recipient of a campaign stands, as one SQL query the list, its filters, the counts
and the CSV export share: a row per invitation with its email, its booking and a single state.

A recipient is in one state: their answer first (booked or accepted, declined, no slot fits,
cancelled), else what stopped the mail (bounced, unsubscribed), else not yet answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    DateTime,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)

from app.invitations.answering import DECLINE_REASONS
from app.like import ESCAPE, contains
from app.models import (
    Booking,
    Campaign,
    Candidate,
    InterviewSlot,
    Invitation,
    Message,
    Suppression,
)


@dataclass(frozen=True)
class State:
    key: str
    label: str


STATES = (
    State("pending", "Not yet answered"),
    State("booked", "Booked or accepted"),
    State("declined", "Declined"),
    State("no_slot_fits", "No slot fits"),
    State("cancelled", "Cancelled"),
    State("bounced", "Bounced"),
    State("unsubscribed", "Unsubscribed"),
    State("replaced", "Replaced by a later invitation"),
)
_WHEN = DateTime(timezone=True)
LABELS = {s.key: s.label for s in STATES}
ATTENDANCE = {"attended": "Attended", "no_show": "No-show"}


def reason_label(code: str | None) -> str:
    """A decline reason as the candidate chose it."""
    return DECLINE_REASONS.get(code or "", (code or "").replace("_", " ").capitalize())


def _emails(campaign: Campaign) -> Any:
    """Each invitation's email: the first message written for it (the campaign's fan-out writes
    it with the invitation; reminders, notices and follow-ups come later)."""
    return (
        select(
            Message.invitation_id,
            Message.id,
            Message.status,
            Message.delivery,
            Message.bounced_at,
            Message.sent_at,
            Message.viewed_at,
            Message.human_viewed_at,
        )
        .where(Message.campaign_id == campaign.id, Message.invitation_id.is_not(None))
        .distinct(Message.invitation_id)
        .order_by(Message.invitation_id, Message.id)
        .subquery("m")
    )


def _bookings(campaign: Campaign) -> Any:
    """Each invitation's active booking, else its latest one (cancelled or moved)."""
    return (
        select(
            Booking.invitation_id,
            Booking.status,
            Booking.attended,
            InterviewSlot.starts_at,
            InterviewSlot.ends_at,
        )
        .join(InterviewSlot, InterviewSlot.id == Booking.slot_id)
        .where(Booking.campaign_id == campaign.id)
        .distinct(Booking.invitation_id)
        .order_by(Booking.invitation_id, (Booking.status == "active").desc(), Booking.id.desc())
        .subquery("b")
    )


def _state(m: Any, b: Any, s: Any) -> Any:
    """The one state a recipient is in: the answer first, then what stopped the mail."""
    bounced = or_(
        m.c.bounced_at.is_not(None),
        m.c.status == "failed",
        s.c.reason.in_(("hard_bounce", "soft_bounce")),
    )
    return case(
        (Invitation.status == "superseded", literal("replaced")),
        (or_(b.c.status == "active", Invitation.status == "accepted"), literal("booked")),
        (Invitation.status == "declined", literal("declined")),
        (or_(Invitation.status == "revoked", b.c.status == "cancelled"), literal("cancelled")),
        (Invitation.no_slot_fits_note.is_not(None), literal("no_slot_fits")),
        (bounced, literal("bounced")),
        (or_(s.c.reason.is_not(None), m.c.status == "suppressed"), literal("unsubscribed")),
        else_=literal("pending"),
    )


def recipients(campaign: Campaign) -> Select:
    """Every recipient of the campaign with what the results list shows (not yet filtered).
    Joins, not a lookup per row: the whole campaign is read for the counts and filters."""
    m, b = _emails(campaign), _bookings(campaign)
    s = select(Suppression.email, Suppression.reason).where(Suppression.org_id == campaign.org_id)
    s = s.subquery("s")
    slots = campaign.scheduling == "slots"
    return (
        select(
            Invitation.id.label("invitation_id"),
            Invitation.status.label("answer"),
            Invitation.responded_at,
            Invitation.no_slot_fits_note,
            Invitation.decline_reason,
            Invitation.decline_note,
            Invitation.followed_up_at,
            Candidate.id.label("candidate_id"),
            Candidate.first_name,
            Candidate.last_name,
            Candidate.email,
            m.c.id.label("message_id"),
            m.c.status.label("message_status"),
            m.c.delivery,
            m.c.bounced_at,
            m.c.sent_at,
            m.c.viewed_at,
            m.c.human_viewed_at,
            b.c.status.label("booking_status"),
            (b.c.starts_at if slots else literal(campaign.slot_starts_at, _WHEN)).label(
                "starts_at"
            ),
            (b.c.ends_at if slots else literal(campaign.slot_ends_at, _WHEN)).label("ends_at"),
            (b.c.attended if slots else Invitation.attended).label("attended"),
            _state(m, b, s).label("state"),
        )
        .join(Candidate, Candidate.id == Invitation.candidate_id)
        .outerjoin(m, m.c.invitation_id == Invitation.id)
        .outerjoin(b, b.c.invitation_id == Invitation.id)
        .outerjoin(s, s.c.email == func.lower(Candidate.email))
        .where(Invitation.org_id == campaign.org_id, Invitation.campaign_id == campaign.id)
    )


def narrowed(query: Select, state: str | None, q: str | None) -> Select:
    """Only one state, and only names or emails containing `q`."""
    inner = query.subquery("r")
    out = select(inner)
    if state in LABELS:
        out = out.where(inner.c.state == state)
    if q:
        like = contains(q[:100])
        name = func.concat(inner.c.first_name, " ", inner.c.last_name)
        out = out.where(
            or_(inner.c.email.ilike(like, escape=ESCAPE), name.ilike(like, escape=ESCAPE))
        )
    return out.order_by(inner.c.invitation_id)


def by_state(query: Select) -> Select:
    """Per state: recipients, those who viewed their invitation page, and those whose only views
    were machines' (one scan of the campaign's invitations)."""
    inner = query.subquery("r")
    return select(
        inner.c.state,
        func.count(),
        func.count(inner.c.human_viewed_at),
        func.count().filter(
            and_(inner.c.viewed_at.is_not(None), inner.c.human_viewed_at.is_(None))
        ),
    ).group_by(inner.c.state)
