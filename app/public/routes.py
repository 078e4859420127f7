"""Candidate-facing pages. GET only shows; accepting, declining and unsubscribing are POSTs, so
mail scanners that follow links change nothing. Every bad, expired or revoked invitation link
gets the same 404 page, rate-limited per IP, saying nothing about whether it ever existed."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app import clock, limits
from app.extensions import csrf, db
from app.invitations.tokens import digest, well_formed
from app.mail.compose import brand_for
from app.mail.outbox import queue_message
from app.mail.tokens import InvalidToken, unsign
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
from app.public import bp
from app.suppressions.rules import SCOPES, normalise
from app.suppressions.services import resubscribe, suppress
from app.tenancy import ALL_ORGS

UNSUBSCRIBE_MAX_AGE = 365 * 24 * 3600


def _rate_limit() -> None:
    """Per-IP budget for the public pages (token guessing gets nowhere fast)."""
    limits.hit(
        "public",
        request.remote_addr or "?",
        current_app.config["INVITE_RATE_PER_MINUTE"],
        60,
        "Too many requests. Wait a minute and try again.",
    )


def _row(model: Any, row_id: int | None) -> Any:
    """A tenant row by id on a public page: no org is logged in, the token already decided."""
    if row_id is None:
        return None
    return db.session.scalar(select(model).where(model.id == row_id).execution_options(**ALL_ORGS))


def _gone() -> ResponseReturnValue:
    return render_template("public/not_found.html"), 404


def _invitation(token: str) -> Invitation | None:
    """The live invitation for a token (pending, accepted or declined, not expired)."""
    if not well_formed(token):
        return None
    invitation = db.session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == digest(token))
        .execution_options(**ALL_ORGS)
    )
    if invitation is None or invitation.status in (
        InvitationStatus.REVOKED,
        InvitationStatus.SUPERSEDED,
    ):
        return None
    if invitation.status == InvitationStatus.PENDING and invitation.expires_at < clock.now():
        return None
    return invitation


def _page(invitation: Invitation, status: int = 200, note: str | None = None):  # noqa: ANN202
    org = db.session.get(Organization, invitation.org_id)
    campaign = _row(Campaign, invitation.campaign_id)
    return render_template(
        "public/invitation.html",
        invitation=invitation,
        org=org,
        brand=brand_for(org),
        campaign=campaign,
        job=_row(Job, invitation.job_id),
        candidate=_row(Candidate, invitation.candidate_id),
        note=note,
    ), status


@bp.get("/i/<token>")
def invitation(token: str) -> ResponseReturnValue:
    _rate_limit()
    found = _invitation(token)
    return _page(found) if found else _gone()


@bp.post("/i/<token>")
def respond(token: str) -> ResponseReturnValue:
    """Accept or decline (once; the other answer afterwards is a 409 with a clear note)."""
    _rate_limit()
    found = _invitation(token)
    if found is None:
        return _gone()
    answer = request.form.get("answer")
    if answer not in ("accept", "decline"):
        abort(400, description="Choose accept or decline.")
    wanted = InvitationStatus.ACCEPTED if answer == "accept" else InvitationStatus.DECLINED
    locked = db.session.scalar(
        select(Invitation)
        .where(Invitation.id == found.id)
        .with_for_update()
        .execution_options(populate_existing=True, **ALL_ORGS)
    )
    if locked.status == wanted:
        return _page(locked, note="Your answer was already recorded. Thank you!")
    if locked.status != InvitationStatus.PENDING:
        return _page(
            locked,
            409,
            note=f"You already {locked.status} this invitation. "
            "To change your answer, reply to the email.",
        )
    locked.status, locked.responded_at = wanted, clock.now()
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
    campaign = _row(Campaign, invitation.campaign_id)
    recruiter = db.session.get(User, campaign.created_by_id) if campaign.created_by_id else None
    if recruiter is None:
        return
    candidate = _row(Candidate, invitation.candidate_id)
    job = _row(Job, invitation.job_id)
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
            "campaign": {
                "name": campaign.name,
                "url": current_app.config["PUBLIC_BASE_URL"]
                + url_for("campaigns.show", campaign_id=campaign.id),
            },
        },
        created_by_id=recruiter.id,
    )


def _unsubscribe_target(token: str) -> dict | None:
    try:
        data = unsign("unsubscribe", token, max_age=UNSUBSCRIBE_MAX_AGE)
    except InvalidToken:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("o"), int)):
        return None
    if "e" not in data:  # the address comes from the message the link was sent in
        message = _row(Message, data.get("m")) if isinstance(data.get("m"), int) else None
        if message is None or message.org_id != data["o"]:
            return None
        data = dict(data, e=message.to_email)
    org = db.session.get(Organization, data["o"])
    return dict(data, org=org) if org is not None else None


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


def _unsubscribe_event(target: dict, how: str, scope: str = "all") -> None:
    """On the timeline of the message the link came in (first time only)."""
    message_id = target.get("m")
    if not isinstance(message_id, int):
        return
    message = _row(Message, message_id)
    if message is None or message.org_id != target["o"]:
        return
    done = db.session.scalar(
        select(Event.id)
        .where(Event.message_id == message.id, Event.type == "unsubscribed")
        .execution_options(**ALL_ORGS)
    )
    if done is None:
        db.session.add(
            Event(
                org_id=message.org_id,
                message_id=message.id,
                type="unsubscribed",
                detail={"via": how, "scope": scope},
            )
        )


@bp.get("/u/<token>")
def unsubscribe_page(token: str) -> ResponseReturnValue:
    """Only shows the choices: a mail scanner following the link changes nothing."""
    _rate_limit()
    target = _unsubscribe_target(token)
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


def unsubscribe_by_token(token: str, how: str) -> dict | None:
    """Suppress the address a signed unsubscribe token names (one-click POST, or by mail).
    Returns the target, or None for a bad token. The caller commits."""
    target = _unsubscribe_target(token)
    if target is None:
        return None
    suppress(target["o"], str(target["e"]), "unsubscribed", ["all"], source=how)
    _unsubscribe_event(target, how)
    return target


@bp.post("/u/<token>/preferences")
def unsubscribe_preferences(token: str) -> ResponseReturnValue:
    """The page's own form (CSRF-protected): unsubscribe from one kind or everything, or
    resubscribe."""
    _rate_limit()
    target = _unsubscribe_target(token)
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
    _unsubscribe_event(target, "preferences page", scope)
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
    from app.mail.compose import contrast, text_on

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
