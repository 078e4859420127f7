"""A candidate's answer: accept, or decline with an optional reason kept for the recruiter. The
answer may change until the reply-by time. With a fixed interview time, accepting sends the
confirmation with the calendar entry (REQUEST), and declining after accepting takes it off the
calendar (CANCEL, a higher SEQUENCE). The caller commits."""

from __future__ import annotations

from datetime import datetime

from app import clock
from app.extensions import db
from app.invitations import booking, fixed_time
from app.models import DECLINE_REASONS, Campaign, Invitation, InvitationStatus, Organization

NOTE_LIMIT = 500


class AnswerError(Exception):
    """An answer that cannot be recorded; `status` is the HTTP status it deserves."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def reply_by(invitation: Invitation, campaign: Campaign) -> datetime:
    """Until when an answer may change: the campaign's reply-by time, else the link's expiry
    (which is never after the interview starts)."""
    return campaign.respond_by or invitation.expires_at


def can_change(invitation: Invitation, campaign: Campaign) -> bool:
    """Whether the page offers to change an answer already given."""
    return invitation.status != InvitationStatus.PENDING and clock.now() < reply_by(
        invitation, campaign
    )


def clean_reason(reason: str | None, note: str | None) -> tuple[str | None, str | None]:
    """The reason code (one of DECLINE_REASONS, or none) and the note, checked."""
    reason = (reason or "").strip() or None
    if reason is not None and reason not in DECLINE_REASONS:
        raise AnswerError("Choose one of the reasons listed, or none.")
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_LIMIT:
        raise AnswerError(f"Keep the note to {NOTE_LIMIT} characters (it has {len(note)}).")
    return reason, note


def answer(
    invitation: Invitation,
    campaign: Campaign,
    wanted: str,
    reason: str | None = None,
    note: str | None = None,
) -> bool:
    """Record the answer on the locked invitation; True when something changed (the recruiter
    is then told). Raises AnswerError for a bad reason or note, or a change after reply-by."""
    if wanted not in (InvitationStatus.ACCEPTED, InvitationStatus.DECLINED):
        raise AnswerError("Choose accept or decline.")
    reason, note = clean_reason(reason, note) if wanted == "declined" else (None, None)
    before = invitation.status
    unchanged = before == wanted and (
        wanted == "accepted"
        or (invitation.decline_reason, invitation.decline_note) == (reason, note)
    )
    if unchanged:
        return False
    if before != InvitationStatus.PENDING and clock.now() >= reply_by(invitation, campaign):
        raise AnswerError(
            f"You already {before} this invitation, and the time to change the answer has passed.",
            409,
        )
    if wanted == InvitationStatus.DECLINED:
        _release_booking(invitation)
    invitation.status, invitation.responded_at = wanted, clock.now()
    invitation.decline_reason, invitation.decline_note = reason, note
    if campaign.slot_starts_at is not None and before != wanted:
        _calendar_notice(invitation, campaign, before)
    return True


def _calendar_notice(invitation: Invitation, campaign: Campaign, before: str) -> None:
    """Confirmation with the .ics on accepting; CANCEL when an accepted time is declined."""
    until = reply_by(invitation, campaign)
    if invitation.status == InvitationStatus.ACCEPTED:
        if before == InvitationStatus.DECLINED:
            invitation.ics_sequence += 1  # back on the calendar after a cancel
        fixed_time.notice(invitation, campaign, "interview_confirmed", reply_by=until)
    elif before == InvitationStatus.ACCEPTED:
        invitation.ics_sequence += 1
        fixed_time.notice(invitation, campaign, "interview_removed", reply_by=until, why="declined")


def _release_booking(invitation: Invitation) -> None:
    """Declining gives a booked place back, with the CANCEL the booking's calendar needs
    (inside the cutoff the booking stands, and the page says so)."""
    if booking.active_booking(invitation) is None:
        return
    org = db.session.get(Organization, invitation.org_id)
    try:
        booking.cancel(org, invitation)
    except booking.BookingError as exc:
        raise AnswerError(str(exc), exc.status) from exc
