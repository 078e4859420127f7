"""Signed links in Herald's own mail, made when the mail is rendered, not stored.

The outbox row keeps only what to sign (purpose, payload, path); the worker signs it at render
time. A copy of the database or a backup therefore holds no working reset or invite link.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from app.mail.tokens import sign

LINKS = "_links"
_PLACEHOLDER = "__token__"


def signed_link(endpoint: str, purpose: str, payload: Any) -> dict[str, Any]:
    """A link spec for the message context: signed later by resolve()."""
    return {"path": url_for(endpoint, token=_PLACEHOLDER), "purpose": purpose, "payload": payload}


def resolve(context: dict[str, Any]) -> dict[str, Any]:
    """Replace each link spec with an absolute signed URL (PUBLIC_BASE_URL)."""
    specs = context.pop(LINKS, None) or {}
    base = current_app.config["PUBLIC_BASE_URL"]
    for name, spec in specs.items():
        token = sign(spec["purpose"], spec["payload"])
        context[name] = base + spec["path"].replace(_PLACEHOLDER, token)
    return context
