"""Candidate-facing pages. GET only shows; accepting, declining and unsubscribing are POSTs, so
mail scanners that follow links change nothing. Every bad, expired or revoked invitation link
gets the same 404 page, rate-limited per IP, saying nothing about whether it ever existed."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.extensions import csrf, db
from app.invitations import answering
from app.mail.compose import brand_for, contrast, text_on
from app.models import (
    Campaign,
    Candidate,
    Event,
    Invitation,
    InvitationStatus,
    Job,
    Message,
    Organization,
    Suppression,
    User,
)
from app.outbox.queue import queue_message
from app.public import bp, slots
from app.public.access import gone, live_invitation, rate_limit, row
from app.suppressions.rules import SCOPES, normalise
from app.suppressions.services import resubscribe, suppress
from app.suppressions.unsubscribe import (
    record_unsubscribe_event,
    unsubscribe_by_token,
    unsubscribe_target,
)
from app.tenancy import ALL_ORGS
from app.tracking.views import record_view


def _page(  # noqa: ANN202
    invitation: Invitation, status: int = 200, note: str | None = None, **extra: Any
):
    org = db.session.get(Organization, invitation.org_id)
    campaign = row(Campaign, invitation.campaign_id)
    if campaign.scheduling == "slots" and not extra.get("confirming"):  # the slot picker's page
        return slots.page(invitation, status=status, note=note)
    return render_template(
        "public/invitation.html",
        invitation=invitation,
        org=org,
        brand=brand_for(org),
        campaign=campaign,
        job=row(Job, invitation.job_id),
        candidate=row(Candidate, invitation.candidate_id),
        note=note,
        reasons=answering.DECLINE_REASONS,
        note_limit=answering.NOTE_LIMIT,
        can_change=answering.can_change(invitation, campaign),
        reply_by=answering.reply_by(invitation, campaign),
        **extra,
    ), status


@bp.get("/i/<token>")
def invitation(token: str) -> ResponseReturnValue:
    rate_limit()
    found = live_invitation(token)
    if found is None:
        return gone()
    record_view(found.id, request.method, request.user_agent.string, request.remote_addr)
    return _page(found)


@bp.post("/i/<token>")
def respond(token: str) -> ResponseReturnValue:
    """Accept, or decline after a confirmation step that offers a reason; an answer may change
    until the reply-by time. Bad input is a 4xx with the page saying why, nothing changed."""
    rate_limit()
    found = live_invitation(token)
    if found is None:
        return gone()
    choice = request.form.get("answer")
    if choice not in ("accept", "decline"):
        return _page(found, 400, note="Choose accept or decline.", note_error=True)
    if choice == "accept" and row(Campaign, found.campaign_id).scheduling == "slots":
        return slots.page(found, status=400, error="Pick one of the times to accept.")
    wanted = InvitationStatus.ACCEPTED if choice == "accept" else InvitationStatus.DECLINED
    form = {k: request.form.get(k) for k in ("reason", "note")}
    if choice == "decline" and request.form.get("confirm") != "yes":
        return _page(found, confirming=True, form=form)  # are you sure? and why (optional)
    locked = db.session.scalar(
        select(Invitation)
        .where(Invitation.id == found.id)
        .with_for_update()
        .execution_options(populate_existing=True, **ALL_ORGS)
    )
    campaign = row(Campaign, locked.campaign_id)
    try:
        changed = answering.answer(locked, campaign, wanted, form["reason"], form["note"])
    except answering.AnswerError as exc:
        db.session.rollback()
        confirming = exc.status == 400 and choice == "decline"
        return _page(
            found, exc.status, note=str(exc), note_error=True, confirming=confirming, form=form
        )
    if not changed:
        return _page(locked, note="Your answer was already recorded. Thank you!")
    _notify_recruiter(locked)
    db.session.commit()
    return _page(locked, note="Thank you! Your answer is recorded.")


def _notify_recruiter(invitation: Invitation) -> None:
    """Event on the invitation's message and an email to the recruiter who sent it."""
    message_id = db.session.scalar(
        select(Message.id)
        .where(Message.invitation_id == invitation.id)
        .execution_options(**ALL_ORGS)
    )
    if message_id:
        db.session.add(
            Event(org_id=invitation.org_id, message_id=message_id, type=invitation.status)
        )
    campaign = row(Campaign, invitation.campaign_id)
    recruiter = db.session.get(User, campaign.created_by_id) if campaign.created_by_id else None
    if recruiter is None:
        return
    candidate = row(Candidate, invitation.candidate_id)
    job = row(Job, invitation.job_id)
    queue_message(
        org_id=invitation.org_id,
        kind="candidate_response",
        template="candidate_response",
        to_email=recruiter.email,
        to_name=recruiter.name,
        context={
            "candidate": {"name": candidate.full_name},
            "job": {"title": job.title},
            "answer": invitation.status,
            "reason": answering.DECLINE_REASONS.get(invitation.decline_reason or "", ""),
            "note": invitation.decline_note or "",
            "campaign": {
                "name": campaign.name,
                "url": current_app.config["PUBLIC_BASE_URL"]
                + url_for("campaigns.show", campaign_id=campaign.id),
            },
        },
        created_by_id=recruiter.id,
    )


def _bad_unsubscribe_link() -> ResponseReturnValue:
    return render_template("public/unsubscribe_invalid.html"), 400


def _unsubscribe_page(
    target: dict, token: str, note: str | None = None, error: str | None = None
) -> ResponseReturnValue:
    org = target["org"]
    email = normalise(str(target["e"]))
    current = db.session.scalar(
        select(Suppression)
        .where(Suppression.org_id == org.id, Suppression.email == email)
        .execution_options(**ALL_ORGS)
    )
    kind = str(target.get("k") or "all")
    return render_template(
        "public/unsubscribe.html",
        org=org,
        brand=brand_for(org),
        token=token,
        email=email,
        kind=kind if kind in SCOPES and kind != "all" else None,
        kind_label=SCOPES.get(kind, "").lower(),
        current=current,
        note=note,
        error=error,
    )


@bp.get("/u/<token>")
def unsubscribe_page(token: str) -> ResponseReturnValue:
    """Only shows the choices: a mail scanner following the link changes nothing."""
    rate_limit()
    target = unsubscribe_target(token)
    return _unsubscribe_page(target, token) if target else _bad_unsubscribe_link()


@bp.post("/u/<token>")
@csrf.exempt  # RFC 8058 one-click: the signed URL is the credential; no cookie, no form token
def unsubscribe(token: str) -> ResponseReturnValue:
    """One-click unsubscribe (List-Unsubscribe-Post): suppressed at once, 200, no redirect."""
    target = unsubscribe_by_token(token, "one-click")
    if target is None:
        return _bad_unsubscribe_link()
    db.session.commit()
    return render_template(
        "public/unsubscribed.html",
        org=target["org"],
        brand=brand_for(target["org"]),
        scope="all",
        token=token,
    ), 200


@bp.post("/u/<token>/preferences")
def unsubscribe_preferences(token: str) -> ResponseReturnValue:
    """The page's own form (CSRF-protected): unsubscribe from one kind or everything, or
    resubscribe."""
    rate_limit()
    target = unsubscribe_target(token)
    if target is None:
        return _bad_unsubscribe_link()
    action = request.form.get("action")
    org_id, email = target["o"], str(target["e"])
    if action == "resubscribe":
        lifted = resubscribe(org_id, email)
        db.session.commit()
        note = (
            "You're subscribed again."
            if lifted
            else "This address is blocked for another reason; reply to the recruiter to fix it."
        )
        return _unsubscribe_page(target, token, note)
    scope = request.form.get("scope", "all")
    if action != "unsubscribe" or scope not in SCOPES:  # a tampered form: the page again
        return _unsubscribe_page(target, token, error="Choose what to unsubscribe from."), 400
    suppress(org_id, email, "unsubscribed", [scope], source="preferences page")
    record_unsubscribe_event(target, "preferences page", scope)
    db.session.commit()
    return render_template(
        "public/unsubscribed.html",
        org=target["org"],
        brand=brand_for(target["org"]),
        scope=scope,
        token=token,
    )


_HEX = frozenset("0123456789abcdefABCDEF")


@bp.get("/brand.css")
def brand_css() -> ResponseReturnValue:
    """The organization's colour on its candidate pages (the CSP allows no inline style): the
    colour is the URL's only input, so the sheet is cached for good and names no org."""
    colour = request.args.get("c", "")
    if len(colour) != 6 or not set(colour) <= _HEX:
        abort(400, description="A colour is six hexadecimal digits.")
    primary = "#" + colour.lower()
    on = text_on(primary).lower()
    text = primary  # links and outlines on white: darkened until they read (4.5:1)
    while contrast(text, "#FFFFFF") < 4.5:
        text = _darker(text)
    css = (
        f":root {{ --brand: {primary}; --brand-dark: {_darker(primary)}; "
        f"--brand-text: {text}; --on-brand: {on}; }}\n"
    )
    return (
        css,
        200,
        {
            "Content-Type": "text/css; charset=utf-8",
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


def _darker(colour: str) -> str:
    """The colour with 15 % more black."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{int(c * 0.85):02x}" for c in rgb)
