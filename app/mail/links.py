"""Signed links in Herald's own mail, made when the mail is rendered, not stored.

The outbox row keeps only what to sign (purpose, payload, path); the worker signs it at render
time. A copy of the database or a backup therefore holds no working reset or invite link.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from app.extensions import db
from app.invitations.context import full_context
from app.invitations.tokens import reveal
from app.mail.tokens import sign
from app.models import Campaign, Invitation

LINKS = "_links"
_PLACEHOLDER = "__token__"


def signed_link(endpoint: str, purpose: str, payload: Any) -> dict[str, Any]:
    """A link spec for the message context: signed later by resolve()."""
    return {"path": url_for(endpoint, token=_PLACEHOLDER), "purpose": purpose, "payload": payload}


class LinkGone(Exception):
    """The invitation behind this mail was revoked or replaced: the mail must not go out."""


def resolve(
    context: dict[str, Any], org_id: int | None = None, message_id: int | None = None
) -> dict[str, Any]:
    """Replace each link spec with an absolute URL (PUBLIC_BASE_URL): signed links, the
    candidate's own invitation link, and the one-click unsubscribe link."""
    specs = context.pop(LINKS, None) or {}
    base = current_app.config["PUBLIC_BASE_URL"]
    for name, spec in specs.items():
        token = sign(spec["purpose"], spec["payload"])
        context[name] = base + spec["path"].replace(_PLACEHOLDER, token)
    campaign_id = context.pop("_campaign", None)
    if campaign_id:
        context = full_context(db.session.get(Campaign, campaign_id), context)
    invitation_id = context.pop("_invitation", None)
    if invitation_id:
        invitation = db.session.get(Invitation, invitation_id)
        token = reveal(invitation.token_encrypted) if invitation else None
        if token is None:
            raise LinkGone("The invitation was cancelled or replaced by a newer one.")
        context.setdefault("invitation", {})["url"] = f"{base}/i/{token}"
    unsubscribe = context.pop("_unsubscribe", None)
    if unsubscribe and org_id:
        payload: dict[str, Any] = {"o": org_id, "k": unsubscribe.get("kind", "all")}
        if message_id:  # the address is read from the message: none in the link (or the logs)
            payload["m"] = message_id
        else:
            payload["e"] = unsubscribe["email"]
        token = sign("unsubscribe", payload)
        context["unsubscribe_url"] = f"{base}/u/{token}"
    return context


def sample_invitation_url() -> str:
    """What a preview shows for the candidate's link (it opens nothing)."""
    return current_app.config["PUBLIC_BASE_URL"] + "/i/sample-link-for-preview"
