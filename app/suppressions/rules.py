"""Who must not be mailed: the reasons and scopes a person sees; the rule itself (blocks) lives
with the outbox, which applies it when a message is sent, and is used here when an audience is
counted. Addresses are compared lower-cased and trimmed.

A suppression has a reason (unsubscribed, hard_bounce, soft_bounce, complaint, manual) and a scope:
template kinds or "all". It applies to candidate mail only (a teammate's password reset is never
held back by a candidate list). An unsubscribe stops bulk mail; the transactional notices that an
interview moved or was cancelled still go. Bounces, complaints and manual entries stop everything
in their scope; transactional mail (those notices, or a send marked transactional) only when their
scope is all email.
"""

from __future__ import annotations

from app.outbox.sendable import BULK, CANDIDATE_KINDS, blocks

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
__all__ = ["BULK", "CANDIDATE_KINDS", "REASONS", "SCOPES", "blocks", "normalise"]


def normalise(email: str) -> str:
    return (email or "").strip().lower()
