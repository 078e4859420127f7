"""Inviting people again for the same job: who in a campaign's audience already holds an open
or answered invitation for it (pending, accepted or booked, declined). They are left out unless
the recruiter includes them knowingly (`include_invited` in the audience); once included, their
older invitation is replaced when the new one goes out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select

from app import clock
from app.extensions import db
from app.models import Booking, Campaign, Candidate, Invitation, Organization

STATES = ("pending", "accepted", "declined")
SHOWN = 20  # names listed on the review; the counts cover everyone


def held(org_id: int, job_id: int) -> Any:
    """Candidate ids with a live invitation for this job: not yet expired if unanswered."""
    return select(Invitation.candidate_id).where(
        Invitation.org_id == org_id,
        Invitation.job_id == job_id,
        or_(
            and_(Invitation.status == "pending", Invitation.expires_at > clock.now()),
            Invitation.status.in_(("accepted", "declined")),
        ),
    )


def leave_out(query: Any, org_id: int, job_id: int | None, audience: dict) -> Any:
    """The candidates query without those already invited, unless they are included."""
    if job_id is None or audience.get("include_invited"):
        return query
    return query.where(Candidate.id.not_in(held(org_id, job_id)))


def among(org: Organization, campaign: Campaign, audience_query: Any) -> dict[str, Any]:
    """How many of the audience already hold an invitation for the job, by state (an accepted
    slot that is booked counts as booked), and the first few of them with their campaign."""
    people = audience_query.with_only_columns(Candidate.id).order_by(None)
    booked = (
        select(Booking.id)
        .where(Booking.invitation_id == Invitation.id, Booking.status == "active")
        .exists()
    )
    newest = (  # one row per person: their newest live invitation for the job
        select(
            Invitation.candidate_id,
            Invitation.campaign_id,
            case((booked, "booked"), else_=Invitation.status).label("state"),
        )
        .where(
            Invitation.org_id == org.id,
            Invitation.job_id == campaign.job_id,
            Invitation.campaign_id != campaign.id,
            Invitation.candidate_id.in_(people),
            Invitation.candidate_id.in_(held(org.id, campaign.job_id)),
            Invitation.status.in_(STATES),
        )
        .distinct(Invitation.candidate_id)
        .order_by(Invitation.candidate_id, Invitation.id.desc())
        .subquery()
    )
    counts = {"pending": 0, "accepted": 0, "booked": 0, "declined": 0}
    counts.update(
        db.session.execute(select(newest.c.state, func.count()).group_by(newest.c.state)).all()
    )
    listed = db.session.execute(
        select(Candidate, newest.c.state, Campaign.name)
        .join(newest, newest.c.candidate_id == Candidate.id)
        .join(Campaign, Campaign.id == newest.c.campaign_id)
        .order_by(Candidate.first_name, Candidate.last_name, Candidate.id)
        .limit(SHOWN)
    ).all()
    people_shown = [{"candidate": c, "state": s, "campaign": n} for c, s, n in listed]
    return {"total": sum(counts.values()), "counts": counts, "people": people_shown}
