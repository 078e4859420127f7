"""What a queued message is made from, typed: the one place for a message row's defaults, its
idempotency key and its Message-ID. queue_message() makes one row from a spec; a campaign's
fan-out makes its COPY rows from specs (copy_row), so both write the same columns the same way.

The context is the mail's content only; what the render resolves (signed links, the campaign's
shared context, the invitation link, the unsubscribe link) is named by typed fields and stored as
the control keys the render reads (see app/mail/links.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.mail.links import LINKS
from app.mail.mime import new_message_id
from app.mail.render import builtin_subject
from app.models import MessageStatus, lane_for

CONTROL_KEYS = (LINKS, "_campaign", "_invitation", "_unsubscribe")
# the messages columns a campaign's fan-out COPYs, in order
COPY_COLUMNS = (
    "id",
    "org_id",
    "kind",
    "lane",
    "template",
    "template_version_id",
    "context",
    "to_email",
    "to_name",
    "subject",
    "status",
    "idempotency_key",
    "message_id",
    "send_after",
    "attempts",
    "candidate_id",
    "campaign_id",
    "invitation_id",
    "created_by_id",
    "created_at",
)


@dataclass(frozen=True)
class MessageSpec:
    """One message to queue: who, what (a built-in template key, or "version" and its pinned
    template version), for which campaign, invitation and candidate, and when."""

    org_id: int
    kind: str
    to_email: str
    template: str = "version"
    to_name: str | None = None
    context: dict[str, Any] = field(default_factory=dict)  # content only: no control keys
    links: dict[str, Any] | None = None  # name → signed link spec (signed at render time)
    template_version_id: int | None = None
    campaign_id: int | None = None
    campaign_context: bool = False  # the campaign's shared context is merged in at render
    invitation_id: int | None = None
    invitation_link: bool = False  # the invitation's link is revealed at render
    candidate_id: int | None = None
    unsubscribe_kind: str | None = None  # a one-click unsubscribe link for this kind
    created_by_id: int | None = None
    idempotency_key: str | None = None
    send_after: datetime | None = None
    lane: str | None = None  # transactional or bulk; None: the kind's (lane_for)

    @classmethod
    def of(cls, context: dict[str, Any] | None = None, **fields: Any) -> MessageSpec:
        """A spec from a context that may still carry control keys (they become fields)."""
        content = dict(context or {})
        links = content.pop(LINKS, None)
        campaign = content.pop("_campaign", None)
        invitation = content.pop("_invitation", None)
        unsubscribe = content.pop("_unsubscribe", None)
        if campaign:
            fields.setdefault("campaign_id", campaign)
        if invitation:
            fields.setdefault("invitation_id", invitation)
        return cls(
            context=content,
            links=links,
            campaign_context=bool(campaign),
            invitation_link=bool(invitation),
            unsubscribe_kind=(unsubscribe or {}).get("kind") if unsubscribe else None,
            **fields,
        )

    def stored_context(self) -> dict[str, Any]:
        """The context as stored: the content and the control keys the render resolves."""
        stored = dict(self.context)
        if self.links:
            stored[LINKS] = self.links
        if self.campaign_context and self.campaign_id:
            stored["_campaign"] = self.campaign_id
        if self.invitation_link and self.invitation_id:
            stored["_invitation"] = self.invitation_id
        if self.unsubscribe_kind:
            stored["_unsubscribe"] = {"email": self.to_email, "kind": self.unsubscribe_kind}
        return stored

    def columns(self, org: object | None, now: datetime) -> dict[str, Any]:
        """The row's values (org: whose domain the Message-ID carries; Herald's own mail, the
        deployment's)."""
        context = self.stored_context()
        return {
            "org_id": self.org_id,
            "kind": self.kind,
            "lane": lane_for(self.kind, self.lane).value,
            "template": self.template,
            "template_version_id": self.template_version_id,
            "context": context,
            "to_email": self.to_email,
            "to_name": self.to_name,
            # a built-in template's subject shows while queued; an org template's once rendered
            "subject": builtin_subject(self.template, context),
            "status": MessageStatus.QUEUED,
            "idempotency_key": self.idempotency_key or f"{self.kind}:{uuid.uuid4().hex}",
            "message_id": new_message_id(org),
            "send_after": self.send_after or now,
            "attempts": 0,
            "candidate_id": self.candidate_id,
            "campaign_id": self.campaign_id,
            "invitation_id": self.invitation_id,
            "created_by_id": self.created_by_id,
            "created_at": now,
        }

    def copy_row(self, message_id: int, org: object | None, now: datetime) -> tuple:
        """The row for COPY (COPY_COLUMNS), its context as JSON."""
        values = dict(self.columns(org, now), id=message_id)
        values["context"] = json.dumps(values["context"])
        return tuple(values[name] for name in COPY_COLUMNS)
