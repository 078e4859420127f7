"""Turn an outbox row into the bytes a provider sends: render (built-in or a pinned template
version), then MIME. Deterministic from the row, so a retry hours later builds the same mail."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from email.utils import formataddr

from flask import current_app

from app import clock
from app.mail import dkim, links, rows
from app.mail.compose import brand_for
from app.mail.merge import render_merged
from app.mail.mime import build_mime, split_address
from app.mail.render import Rendered, render_builtin
from app.mail.tracked_links import rewrite
from app.models import (
    TEMPLATE_TEST,
    Lane,
    Message,
    Organization,
    TemplateKind,
    TemplateVersion,
)
from app.providers import OutgoingMessage

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_safe(value: str | None) -> str | None:
    """No control characters (CR/LF would inject headers) in a display name."""
    return _CONTROL.sub(" ", value).strip() if value else value


def _render(message: Message) -> tuple[Rendered, Organization | None, str | None]:
    """The rendered mail, the org whose branding it carries, and its unsubscribe URL."""
    context = links.resolve(dict(message.context), message.org_id, message.id)
    unsubscribe = context.get("unsubscribe_url")
    if message.template_version_id is None:
        return render_builtin(message.template, context), None, unsubscribe
    version = rows.get(TemplateVersion, message.template_version_id)
    org = rows.get(Organization, message.org_id)
    rendered = render_merged(  # a campaign's template is rendered once, then merged
        subject=version.subject,
        html=version.html,
        text=version.text,
        brand=brand_for(org),
        context=context,
        bulk=TemplateKind(version.template.kind).is_bulk,
    )
    if message.kind == TEMPLATE_TEST:  # a test is never mistaken for the real mail
        rendered = replace(rendered, subject=f"[Test] {rendered.subject}")
    return rendered, org, unsubscribe


def _tracked(message: Message, org: Organization | None) -> bool:
    """Open and click tracking: org mail only, unless the org or the campaign turned it off."""
    if org is None or not org.tracking_enabled:
        return False
    if message.campaign_id is None:
        return True
    from app.models import Campaign

    campaign = rows.get(Campaign, message.campaign_id)  # (once per batch)
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


def _sender(org: Organization | None) -> tuple[str, dict[str, str]]:
    return rows.remember(("sender", org.id if org else None), lambda: sender_for(org))


def sender_for(org: Organization | None) -> tuple[str, dict[str, str]]:
    """From header and extra headers: the org's sender and reply-to when branded."""
    default_name, default_addr = split_address(current_app.config["MAIL_FROM"])
    if org is None:
        return formataddr((default_name, default_addr)), {}
    name = header_safe(org.sender_name or org.name)
    extra = {"Reply-To": org.reply_to} if org.reply_to else {}
    return formataddr((name, org.sender_email or default_addr)), extra


def _calendar(message: Message, org: Organization | None, mail_from: str) -> bytes | None:
    """The .ics for an invitation whose campaign has an interview slot."""
    if message.invitation_id is None or org is None:
        return None
    from app.mail.calendar import invitation_ics
    from app.models import Campaign, Invitation, Job

    campaign = rows.get(Campaign, message.campaign_id) if message.campaign_id else None
    if campaign is None or campaign.slot_starts_at is None:
        return None  # no interview time: no calendar (and nothing more to load)
    invitation = rows.get(Invitation, message.invitation_id)
    if invitation is None:
        return None
    job = rows.get(Job, campaign.job_id)
    name, address = split_address(mail_from)
    domain = address.rpartition("@")[2] or "herald.localhost"
    return invitation_ics(
        uid=f"invitation-{invitation.id}@{domain}",
        sequence=invitation.ics_sequence,
        starts_at=campaign.slot_starts_at,
        ends_at=campaign.slot_ends_at,
        summary=f"Interview: {job.title} ({org.name})",
        location=campaign.location or job.location or "",
        description=f"{job.interview_format}, {job.duration_minutes} minutes.",
        organizer_name=name or org.name,
        organizer_email=address,
        attendee_name=message.to_name or message.to_email,
        attendee_email=message.to_email,
        cancel=invitation.status == "revoked",
    )


def envelope_sender(message: Message) -> str:
    """The envelope sender outgoing_for will give this message (known before it is built)."""
    org = None
    if message.template_version_id is not None:
        org = rows.get(Organization, message.org_id)
    return split_address(_sender(org)[0])[1]


def outgoing_for(
    message: Message, midway: Callable[[], None] | None = None
) -> tuple[OutgoingMessage, str]:
    """Render and serialize one message (`midway` is called between the two); with its
    subject as rendered (written with the outcome: the row is not changed here)."""
    rendered, org, unsubscribe = _render(message)
    if _tracked(message, org):
        rendered = replace(rendered, html=rewrite(rendered.html, message.id))
    if midway is not None:
        midway()
    mail_from, extra = _sender(org)
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
        signer=dkim_signer(org),
    )
    return outgoing, rendered.subject


def dkim_signer(org: Organization | None) -> object | None:
    """The org's DKIM signer when it has DKIM on (built once per key, then reused)."""
    if org is None or not org.dkim_enabled or not org.dkim_key_encrypted:
        return None
    return dkim.signer_for(org)
