"""Reminders, computed when due rather than written with the campaign. Two families, each at
the org's offsets and each unique per invitation and offset (a rerun never sends twice):
- interview reminders ("i-<m>m") to candidates who accepted a fixed time, anchored at the
  interview, with its time, place or link and the link to reschedule or cancel;
- nudges ("t-<m>m") to candidates who have not answered yet, anchored at the reply-by time.
The anchor is read at send time, so moving the interview moves them. With business hours on, a
reminder due outside them goes at the nearest allowed moment before the anchor (read in the
candidate's zone), or at once with the reason on its timeline: never dropped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import clock
from app.extensions import db
from app.invitations.business_hours import (
    LOOKAHEAD,
    BusinessHours,
    Placement,
    place,
    zone_or,
)
from app.models import (
    Booking,
    BookingStatus,
    Campaign,
    Candidate,
    EmailTemplate,
    Event,
    InterviewSlot,
    Invitation,
    Message,
    Organization,
    Reminder,
    Suppression,
    TemplateKind,
    default_template,
)
from app.outbox.queue import queue_message

BATCH = 1000
NUDGE, INTERVIEW = "t", "i"  # the kind's prefix: "t-120m" (kept from before), "i-120m"


@dataclass(frozen=True)
class Due:
    """One invitation a reminder may be due for, with its anchor and the zone to read it in
    (and, for a booked slot, the slot's own time and place for the mail)."""

    invitation_id: int
    anchor: datetime
    zone: str | None
    slot: dict | None = None
    since: datetime | None = None  # a booking's start: reminders sent before it were for another


def hours_of(org: Organization) -> BusinessHours | None:
    """The org's business hours when its reminders keep to them."""
    if not org.reminders_business_hours:
        return None
    return BusinessHours(
        tuple(org.business_days or ()), org.business_start_minute, org.business_end_minute
    )


def _unreminded(org: Organization, kind: str, since: Any = None) -> list[Any]:
    """Conditions: no reminder of this kind yet (since `since`: a rescheduled booking is
    reminded again), the address not suppressed."""
    already = select(Reminder.id).where(
        Reminder.invitation_id == Invitation.id,
        Reminder.kind == kind,
        Reminder.due_at >= since if since is not None else True,
    )
    suppressed = select(Suppression.id).where(
        Suppression.org_id == org.id, Suppression.email == Candidate.email
    )
    return [~already.exists(), ~suppressed.exists()]


def _window(anchor: Any, minutes: int, early: timedelta) -> list[Any]:
    """The anchor is ahead, and this offset (widened by `early`) has come."""
    now = clock.now()
    return [anchor > now, anchor - timedelta(minutes=minutes) - early <= now]


def _candidates(
    org: Organization, campaign: Campaign, family: str, minutes: int, early: timedelta
) -> Iterator[Due]:
    """Invitations of the family whose reminder at this offset may be due by now (`early`
    widens the window for reminders that business hours move earlier), not yet reminded."""
    kind = f"{family}-{minutes}m"
    base = (
        select(Invitation.id, Candidate.timezone, Invitation.expires_at)
        .join(Candidate, Candidate.id == Invitation.candidate_id)
        .where(Invitation.campaign_id == campaign.id)
        .order_by(Invitation.id)
        .execution_options(yield_per=BATCH)
    )
    base_once = base.where(*_unreminded(org, kind))
    if family == NUDGE:  # not answered, nothing booked: anchored at the reply-by time
        booked = select(Booking.id).where(
            Booking.invitation_id == Invitation.id, Booking.status == BookingStatus.ACTIVE
        )
        query = base_once.where(
            Invitation.status == "pending",
            ~booked.exists(),
            *_window(Invitation.expires_at, minutes, early),
        )
        for row in db.session.execute(query):
            yield Due(row.id, row.expires_at, row.timezone)
        return
    if campaign.slot_starts_at is not None:  # accepted a fixed time
        if all(_window(campaign.slot_starts_at, minutes, early)):
            for row in db.session.execute(base_once.where(Invitation.status == "accepted")):
                yield Due(row.id, campaign.slot_starts_at, row.timezone)
    booked_query = (
        base.join(Booking, Booking.invitation_id == Invitation.id)
        .join(InterviewSlot, InterviewSlot.id == Booking.slot_id)
        .where(
            Booking.status == BookingStatus.ACTIVE,
            Invitation.status.not_in(["revoked", "superseded"]),
            *_unreminded(org, kind, Booking.created_at),
            *_window(InterviewSlot.starts_at, minutes, early),
        )
        .add_columns(
            Booking.created_at,
            Booking.time_zone,
            InterviewSlot.starts_at,
            InterviewSlot.ends_at,
            InterviewSlot.location,
        )
    )
    for row in db.session.execute(booked_query):
        slot = {
            "starts_at": row.starts_at.isoformat(),
            "ends_at": row.ends_at.isoformat(),
            "location": row.location,
        }
        yield Due(row.id, row.starts_at, row.time_zone or row.timezone, slot, row.created_at)


def send_due() -> dict[str, int]:
    """Queue every reminder now due (each exactly once); the caller commits."""
    counts = {"sent": 0}
    campaigns = db.session.scalars(select(Campaign).where(Campaign.status.in_(["sending", "sent"])))
    for campaign in campaigns:
        org = db.session.get(Organization, campaign.org_id)
        template = default_template(org.id, TemplateKind.REMINDER)
        if template is None:
            continue
        hours = hours_of(org)
        early = LOOKAHEAD if hours else timedelta(0)
        placements: dict[tuple, Placement] = {}  # per (anchor, offset, zone): one computation
        for minutes in sorted({int(m) for m in org.reminder_offsets or []}):
            for family in (INTERVIEW, NUDGE):
                for due in list(_candidates(org, campaign, family, minutes, early)):
                    key = (due.anchor, minutes, due.zone)
                    if key not in placements:
                        placements[key] = _placement(org, hours, due, minutes)
                    placement = placements[key]
                    if placement.at > clock.now():
                        continue
                    kind = f"{family}-{minutes}m"
                    if _remind(org, campaign, template, due, kind, placement.reason):
                        counts["sent"] += 1
    return counts


def _placement(org: Organization, hours: BusinessHours | None, due: Due, minutes: int) -> Placement:
    """When this reminder goes: its own time, or as business hours in the candidate's zone
    (else the org's) allow."""
    ideal = due.anchor - timedelta(minutes=minutes)
    if hours is None:
        return Placement(ideal)
    return place(ideal, due.anchor, clock.now(), hours, zone_or(due.zone, org.timezone))


def _remind(
    org: Organization,
    campaign: Campaign,
    template: EmailTemplate,
    due: Due,
    kind: str,
    reason: str | None,
) -> bool:
    """Claim the (invitation, kind) row, then queue the mail with the same personal link (and
    the reason on its timeline when business hours moved it)."""
    claimed = db.session.execute(
        pg_insert(Reminder)
        .values(
            org_id=org.id,
            invitation_id=due.invitation_id,
            kind=kind,
            due_at=clock.now(),
            status="sent",
        )
        .on_conflict_do_update(  # only one sent for an earlier booking is claimed again
            index_elements=["invitation_id", "kind"],
            set_={"due_at": clock.now(), "status": "sent", "message_id": None},
            where=Reminder.due_at < (due.since or datetime.min.replace(tzinfo=UTC)),
        )
        .returning(Reminder.id)
    ).scalar()
    if claimed is None:
        return False  # another scheduler run got it first
    original = db.session.scalar(
        select(Message).where(Message.invitation_id == due.invitation_id).order_by(Message.id)
    )
    if original is None:
        return False
    context = dict(original.context)
    context.pop("_calendar", None)
    if context.get("_unsubscribe"):
        context["_unsubscribe"] = dict(context["_unsubscribe"], kind="reminder")
    context["reminder"] = {"kind": "interview" if kind.startswith(INTERVIEW) else "pick_a_time"}
    if due.slot is not None:  # the booked slot, read in the zone the candidate booked in
        shared = campaign.context.get("interview", {})
        location = due.slot["location"] or shared.get("location", "")
        context["interview"] = {**shared, **due.slot, "location": location}
        context["recipient_timezone"] = due.zone
    message = queue_message(
        org_id=org.id,
        kind="reminder",
        template="version",
        to_email=original.to_email,
        to_name=original.to_name,
        context=context,
        # (a rescheduled booking claims the row again: its reminder is another message)
        idempotency_key=f"reminder:{claimed}"
        + (f":{int(due.since.timestamp())}" if due.since else ""),
        template_version_id=template.current_version_id,
        candidate_id=original.candidate_id,
        campaign_id=campaign.id,
        invitation_id=due.invitation_id,
    )
    if reason:
        db.session.add(
            Event(
                org_id=org.id,
                message_id=message.id,
                type="business_hours",
                detail={"reason": reason},
            )
        )
    db.session.get(Reminder, claimed).message_id = message.id
    return True
