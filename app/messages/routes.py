"""Home and messages."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db, htmx
from app.messages import bp, services
from app.models import Campaign, Candidate, Message, MessageStatus, Role
from app.tenancy import current_org, get_for_org_or_404, role_required, scoped

ACTIVE = (MessageStatus.QUEUED, MessageStatus.SENDING)


def _recent() -> services.RecentPage:
    """The page of emails the Newer/Older links (and the poll) ask for."""
    return services.recent(current_org.id, _cursor("before"), _cursor("after"))


def _cursor(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isascii() and value.isdecimal() and len(value) < 19 else None


@bp.get("/")
def home() -> ResponseReturnValue:
    """Landing page for visitors; the org overview for members."""
    if not current_user.is_authenticated:
        return render_template("messages/landing.html")
    return _overview()


@role_required(Role.VIEWER)
def _overview() -> ResponseReturnValue:
    page = _recent()
    return render_template(
        "messages/home.html",
        messages=page.messages,
        page=page,
        polling=any(m.status in ACTIVE for m in page.messages),
        has_candidates=_has_candidates(page.messages),
    )


def _has_candidates(messages: list[Message]) -> bool:
    """For the empty Overview's next step (only asked when nothing was sent yet)."""
    return bool(messages) or bool(
        db.session.scalar(
            select(scoped(Candidate).with_only_columns(Candidate.id).limit(1).exists())
        )
    )


@bp.get("/messages")
@role_required(Role.VIEWER)
def messages() -> ResponseReturnValue:
    """The recent-messages table (HTMX polls it while anything is in flight)."""
    page = _recent()
    polling = any(m.status in ACTIVE for m in page.messages)
    template = "messages/_messages.html" if htmx else "messages/home.html"
    return render_template(
        template,
        messages=page.messages,
        page=page,
        polling=polling,
        has_candidates=_has_candidates(page.messages),
    )


@bp.get("/messages/<int:message_id>")
@role_required(Role.VIEWER)
def message(message_id: int) -> ResponseReturnValue:
    """One message and its event timeline (under its campaign, when it has one)."""
    message = get_for_org_or_404(Message, message_id)
    campaign = None
    if message.campaign_id is not None:
        campaign = db.session.scalar(scoped(Campaign).where(Campaign.id == message.campaign_id))
    return render_template("messages/message.html", message=message, campaign=campaign)


@bp.post("/test-email")
@role_required(Role.RECRUITER)
def test_email() -> ResponseReturnValue:
    """Send a test email to yourself through the real outbox, worker and provider."""
    services.send_test_email(current_org, current_user)
    db.session.commit()
    flash(f"Test email queued to {current_user.email}. Watch its status below.", "success")
    return redirect(url_for("messages.home"))


@bp.get("/messages/search")
@role_required(Role.VIEWER)
def search() -> ResponseReturnValue:
    """Find a message by the candidate's email address or its Message-ID."""
    q = request.args.get("q", "").strip()[:255]
    found = services.find_messages(current_org.id, q) if q else []
    return render_template("messages/search.html", q=q, found=found)
