"""Turn an outbox row into the bytes a provider sends: render (built-in or a pinned template
version), then MIME. Deterministic from the row, so a retry hours later builds the same mail."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import formataddr

from flask import current_app

from app import clock
from app.extensions import db
from app.mail import links
from app.mail.calendar import invitation_ics
from app.mail.compose import brand_for, render_authored
from app.mail.mime import build_mime, split_address
from app.mail.render import Rendered, render_builtin
from app.mail.tracked_links import rewrite
from app.models import (
    TEMPLATE_TEST,
    Campaign,
    Lane,
    Message,
    Organization,
    TemplateKind,
    TemplateVersion,
)
from app.providers import OutgoingMessage

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ORG_MAIL = "_org_mail"  # context flag: a built-in mail sent as the org
CALENDAR = "_calendar"  # context: the calendar entry a mail carries, written when queued


def header_safe(value: str | None) -> str | None:
    """No control characters (CR/LF would inject headers) in a display name."""
    return _CONTROL.sub(" ", value).strip() if value else value


@dataclass(frozen=True)
class Pinned:
    """What a template version says, the same for every recipient (a version never changes)."""

    subject: str
    html: str
    text: str | None
    bulk: bool


@functools.lru_cache(maxsize=256)
def pinned(version_id: int) -> Pinned:
    """A template version's sources, read once per process."""
    version = db.session.get(TemplateVersion, version_id)
    bulk = TemplateKind(version.template.kind).is_bulk
    return Pinned(version.subject, version.html, version.text, bulk)


def _render(message: Message) -> tuple[Rendered, Organization | None, str | None]:
    """The rendered mail, the org whose branding it carries, and its unsubscribe URL."""
    context = links.resolve(dict(message.context), message.org_id, message.id)
    context.pop(CALENDAR, None)  # for the attachment only
    unsubscribe = context.get("unsubscribe_url")
    if message.template_version_id is None:
        # a built-in mail to a candidate (a booking's) carries the org's brand and sender
        org = db.session.get(Organization, message.org_id) if context.pop(ORG_MAIL, False) else None
        if org is not None:
            context["brand"] = brand_for(org)
        return render_builtin(message.template, context), org, unsubscribe
    version = pinned(message.template_version_id)
    org = db.session.get(Organization, message.org_id)
    rendered = render_authored(  # the same render as the preview and the test send
        subject=version.subject,
        html=version.html,
        text=version.text,
        brand=brand_for(org),
        context=context,
        bulk=version.bulk,
    )
    if message.kind == TEMPLATE_TEST:  # a test is never mistaken for the real mail
        rendered = replace(rendered, subject=f"[Test] {rendered.subject}")
    return rendered, org, unsubscribe


def _tracked(message: Message, org: Organization | None) -> bool:
    """Open and click tracking: org mail only, unless the org or the campaign turned it off."""
    if org is None or not org.tracking_enabled or message.template_version_id is None:
        return False
    if message.campaign_id is None:
        return True
    campaign = db.session.get(Campaign, message.campaign_id)
    return bool(campaign and campaign.tracking_enabled)


def list_headers(message: Message, org: Organization | None, unsubscribe: str | None) -> dict:
    """List-Unsubscribe (RFC 8058 one-click), List-Id and Feedback-ID for candidate mail; no
    List-Unsubscribe on transactional mail (a notice that an interview moved is not a list)."""
    if org is None:
        return {}
    if message.lane == Lane.TRANSACTIONAL:
        unsubscribe = None  # the footer keeps its own link, if the template has one
    domain = org.sending_domain or "herald.localhost"
    headers = {
        "List-Id": f"{header_safe(org.name)} {message.kind} <{message.kind}.org{org.id}.{domain}>",
        "Feedback-ID": f"c{message.campaign_id or 0}:{message.kind}:org{org.id}:herald",
    }
    if unsubscribe:
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        bounce_domain = current_app.config["BOUNCE_DOMAIN"]
        if bounce_domain and "/u/" in unsubscribe:  # the inbound server takes these
            token = unsubscribe.rsplit("/u/", 1)[1]
            headers["List-Unsubscribe"] += f", <mailto:unsubscribe@{bounce_domain}?subject={token}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def sender_for(org: Organization | None) -> tuple[str, dict[str, str]]:
    """From header and extra headers: the org's sender and reply-to when branded."""
    default_name, default_addr = split_address(current_app.config["MAIL_FROM"])
    if org is None:
        return formataddr((default_name, default_addr)), {}
    name = header_safe(org.sender_name or org.name)
    extra = {"Reply-To": org.reply_to} if org.reply_to else {}
    return formataddr((name, org.sender_email or default_addr)), extra


def _calendar(message: Message, org: Organization | None, mail_from: str) -> bytes | None:
    """The .ics the message was queued with (a booking's, or a fixed time's once accepted):
    an invitation alone carries none, since nothing is on a calendar before a yes."""
    spec = message.context.get(CALENDAR)
    if org is None or not spec:
        return None
    return _entry(spec, message, org, mail_from)


def _entry(spec: dict, message: Message, org: Organization, mail_from: str) -> bytes:
    name, address = split_address(mail_from)
    return entry_ics(
        spec,
        organizer=(name or org.name, address),
        attendee=(message.to_name or message.to_email, message.to_email),
    )


def entry_ics(spec: dict, *, organizer: tuple[str, str], attendee: tuple[str, str]) -> bytes:
    """The .ics of a calendar entry written as a dict when its mail was queued."""
    return invitation_ics(
        uid=spec["uid"],
        sequence=int(spec["sequence"]),
        starts_at=datetime.fromisoformat(spec["starts_at"]),
        ends_at=datetime.fromisoformat(spec["ends_at"]),
        summary=spec["summary"],
        location=spec.get("location") or "",
        description=spec.get("description") or "",
        organizer_name=organizer[0],
        organizer_email=organizer[1],
        attendee_name=attendee[0],
        attendee_email=attendee[1],
        cancel=bool(spec.get("cancel")),
    )


def outgoing_for(message: Message) -> tuple[OutgoingMessage, str]:
    """Render and serialize one message; with its subject as rendered (written with the
    outcome: the row is not changed here)."""
    rendered, org, unsubscribe = _render(message)
    if _tracked(message, org):
        rendered = replace(rendered, html=rewrite(rendered.html, message.id))
    mail_from, extra = sender_for(org)
    extra = dict(extra)
    extra.update(list_headers(message, org, unsubscribe))
    raw = build_mime(
        rendered,
        mail_from=mail_from,
        to_email=message.to_email,
        to_name=header_safe(message.to_name),
        message_id=message.message_id,
        date=clock.now(),
        headers={"X-Herald-Message": str(message.id), **extra},
        calendar=_calendar(message, org, mail_from),
    )
    envelope_from = split_address(mail_from)[1]
    outgoing = OutgoingMessage(
        message.id,
        raw,
        envelope_from,
        message.to_email,
        message.message_id,
        message.idempotency_key,
        tag=f"campaign-{message.campaign_id}" if message.campaign_id else message.kind,
        org_id=org.id if org is not None else None,
    )
    return outgoing, rendered.subject
