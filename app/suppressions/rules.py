"""Who must not be mailed: the rule checked when a message is claimed, and when an audience is
counted. Addresses are compared lower-cased and trimmed.

A suppression has a reason (unsubscribed, hard_bounce, soft_bounce, complaint, manual) and a scope:
template kinds or "all". It applies to candidate mail only (a teammate's password reset is never
held back by a candidate list). An unsubscribe stops bulk mail; the transactional notices that an
interview moved or was cancelled still go. Bounces, complaints and manual entries stop everything
in their scope; transactional mail (those notices, or a send marked transactional) only when their
scope is all email.
"""

from __future__ import annotations

from app.models import BULK_KINDS, Lane, Suppression

REASONS = {
    "unsubscribed": "Unsubscribed",
    "hard_bounce": "Hard bounce",
    "soft_bounce": "Repeated soft bounces",
    "complaint": "Spam complaint",
    "manual": "Added by a teammate",
}
SCOPES = {
    "all": "All email",
    "invitation": "Invitations",
    "reminder": "Reminders",
    "follow_up": "Follow-ups",
    "custom": "Other updates",
}
BULK = {str(k) for k in BULK_KINDS}
CANDIDATE_KINDS = BULK | {"cancelled", "rescheduled"}


def normalise(email: str) -> str:
    return (email or "").strip().lower()


def blocks(suppression: Suppression, kind: str, lane: str = Lane.BULK) -> bool:
    """Does this suppression hold back a message of this kind, in this lane? Transactional
    mail to a candidate is held back only by a suppression of all email that is not an
    unsubscribe (a bounce, a complaint, a manual entry)."""
    if kind not in CANDIDATE_KINDS:
        return False
    scope = suppression.scope or ["all"]
    if lane == Lane.TRANSACTIONAL or kind not in BULK:
        return "all" in scope and suppression.reason != "unsubscribed"
    return "all" in scope or kind in scope
