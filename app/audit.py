"""The audit trail: every teammate, role and settings change is recorded with who made it, and the
Team page reads each action back in words. Core above models, so every feature can record without
importing another feature."""

from __future__ import annotations

from app.extensions import db
from app.models import AuditEntry, User

# What the Team page says for each audited action ("Dana imported candidates").
ACTIONS = {
    "org.created": "created the organization",
    "settings.changed": "changed the settings",
    "settings.retention_changed": "changed how long events are kept",
    "branding.changed": "changed the branding",
    "invite.sent": "invited a teammate",
    "invite.resent": "sent an invitation again",
    "invite.revoked": "withdrew an invitation",
    "invite.accepted": "joined",
    "member.removed": "removed a member",
    "member.role_changed": "changed a role",
    "candidates.import": "imported candidates",
    "candidate.invitations_revoked": "revoked a candidate's invitation links",
    "candidate.added": "added a candidate",
    "candidate.edited": "edited a candidate",
    "candidate.deleted": "deleted a candidate",
    "job.created": "created a job",
    "job.archived": "archived a job",
    "job.restored": "restored a job",
    "campaign.created": "created a campaign",
    "campaign.sent": "sent a campaign",
    "campaign.scheduled": "scheduled a campaign",
    "campaign.paused": "paused a campaign",
    "campaign.resumed": "resumed a campaign",
    "campaign.cancelled": "cancelled a campaign",
    "campaign.interview_moved": "moved an interview",
    "campaign.slots_added": "added interview slots",
    "campaign.slot_closed": "closed an interview slot",
    "campaign.slot_opened": "opened an interview slot again",
    "campaign.slot_cancelled": "cancelled an interview slot",
    "campaign.booking_moved": "moved a candidate to another slot",
    "template.created": "created a template",
    "template.default": "made a template the default",
    "template.deleted": "deleted a template",
    "provider.added": "added a provider",
    "provider.changed": "changed a provider",
    "provider.removed": "removed a provider",
    "provider.enabled": "turned a provider on",
    "provider.disabled": "turned a provider off",
    "provider.reordered": "reordered the providers",
    "provider.breaker_reset": "reset a provider's circuit breaker",
    "webhook_key.changed": "saved the Mailgun webhook key",
    "webhook_key.removed": "removed the Mailgun webhook key",
    "dkim.key_generated": "generated a DKIM key",
    "dkim.key_imported": "imported a DKIM key",
    "dkim.enabled": "turned DKIM signing on",
    "dkim.disabled": "turned DKIM signing off",
    "suppression.added": "suppressed an address",
    "suppression.removed": "removed a suppression",
    "suppression.imported": "imported suppressions",
    "dead_letters.retried": "retried failed emails",
    "dead_letters.discarded": "discarded failed emails",
}


def audit_phrase(action: str) -> str:
    """The Team page's words for an action (its raw name, made readable, when unknown)."""
    return ACTIONS.get(action) or action.replace(".", " ").replace("_", " ")


def audit(org_id: int, actor: User | None, action: str, **detail: object) -> None:
    """Record a team or settings change (no commit)."""
    db.session.add(
        AuditEntry(
            org_id=org_id, actor_id=actor.id if actor else None, action=action, detail=detail
        )
    )
