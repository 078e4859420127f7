"""A candidate's answer: accept, or decline with an optional reason kept for the recruiter. The
answer may change until the reply-by time. With a fixed interview time, accepting sends the
confirmation with the calendar entry (REQUEST), and declining after accepting takes it off the
calendar (CANCEL, a higher SEQUENCE). The caller commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.mail.outbox import queue_message
from app.models import Campaign, Invitation, InvitationStatus, Message
from app.tenancy import ALL_ORGS

DECLINE_REASONS = {
    "another_offer": "Accepted another offer",
    "not_interested": "Not interested anymore",
    "timing": "Timing doesn't work",
    "other": "Other",
}
NOTE_LIMIT = 500
CALENDAR = "_calendar"  # the message context key app.mail.build reads


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
    invitation.status, invitation.responded_at = wanted, clock.now()
    invitation.decline_reason, invitation.decline_note = reason, note
    if campaign.slot_starts_at is not None and before != wanted:
        _calendar_notice(invitation, campaign, before)
    return True


def _calendar_notice(invitation: Invitation, campaign: Campaign, before: str) -> None:
    """Confirmation with the .ics on accepting; CANCEL when an accepted time is declined."""
    if invitation.status == InvitationStatus.ACCEPTED:
        if before == InvitationStatus.DECLINED:
            invitation.ics_sequence += 1  # back on the calendar after a cancel
        queue_notice(invitation, campaign, "interview_confirmed", "REQUEST")
    elif before == InvitationStatus.ACCEPTED:
        invitation.ics_sequence += 1
        queue_notice(invitation, campaign, "interview_removed", "CANCEL", why="declined")


def queue_notice(
    invitation: Invitation, campaign: Campaign, template: str, method: str, why: str = ""
) -> Message | None:
    """Queue a candidate notice with the calendar entry, from the invitation mail's own data
    (a replaced invitation's link no longer works, so that notice carries none)."""
    original = db.session.scalar(
        select(Message)
        .where(Message.org_id == invitation.org_id, Message.invitation_id == invitation.id)
        .order_by(Message.id)
        .limit(1)
        .execution_options(**ALL_ORGS)  # also on the candidate's page, where no org is signed in
    )
    if original is None:
        return None
    context = dict(original.context)
    context.pop("_unsubscribe", None)  # transactional: no unsubscribe link
    if why == "replaced":
        context.pop("_invitation", None)
    context.update({CALENDAR: {"method": method, "sequence": invitation.ics_sequence}, "why": why})
    kind = "booking_confirmation" if method == "REQUEST" else "booking_cancelled"
    message = queue_message(
        org_id=invitation.org_id,
        kind=kind,
        template=template,
        to_email=original.to_email,
        to_name=original.to_name,
        context=context,
        idempotency_key=f"{kind}:{invitation.id}:{invitation.ics_sequence}:{method}",
    )
    message.candidate_id, message.campaign_id = original.candidate_id, campaign.id
    message.invitation_id = invitation.id
    return message
