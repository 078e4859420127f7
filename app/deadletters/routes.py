"""The dead-letter page: filter failed messages, see each attempt, retry or discard."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.deadletters import bp
from app.deadletters import services as svc
from app.extensions import db
from app.mail.outbox import kick_dispatcher
from app.models import Message, Role
from app.tenancy import current_org, role_required


def _filters() -> svc.Filters:
    values = request.values
    campaign = values.get("campaign", "")
    return svc.Filters(
        campaign_id=int(campaign)
        if campaign.isascii() and campaign.isdecimal() and len(campaign) < 10
        else None,
        provider=(values.get("provider") or None),
        error=values.get("error", "")[:100],
    )


def _args(filters: svc.Filters) -> dict:
    return {
        k: v
        for k, v in {
            "campaign": filters.campaign_id,
            "provider": filters.provider,
            "error": filters.error,
        }.items()
        if v
    }


@bp.get("/dead-letters")
@role_required(Role.VIEWER)
def index(
    status: int = 200, error: str | None = None, reason_error: str | None = None
) -> ResponseReturnValue:
    filters = _filters()
    query = svc.failed(current_org.id, filters)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.options(selectinload(Message.events)).limit(svc.PAGE)).all()
    return render_template(
        "deadletters/index.html",
        rows=rows,
        total=total,
        filters=filters,
        args=_args(filters),
        facets=svc.facets(current_org.id),
        error=error,
        reason_error=reason_error,
        checked=set(_ids()) if request.method == "POST" else set(),  # a refused post keeps them
        reason=request.form.get("reason", "") if request.method == "POST" else "",
    ), status


def _ids() -> list[int]:
    return [
        int(i) for i in request.form.getlist("ids") if i.isascii() and i.isdecimal() and len(i) < 19
    ]


@bp.post("/dead-letters/retry")
@role_required(Role.RECRUITER)
def retry() -> ResponseReturnValue:
    filters = _filters()
    everything = request.form.get("scope") == "all"
    ids = None if everything else _ids()
    if ids == []:
        return index(400, "Select the emails to retry, or retry all that match.")
    try:
        count = svc.retry(current_org.id, current_user, ids, filters if everything else None)
    except svc.DeadLetterError as exc:
        db.session.rollback()
        return index(400, str(exc))
    db.session.commit()
    kick_dispatcher()
    flash(f"{count} email{'' if count == 1 else 's'} queued again.", "success")
    return redirect(url_for(".index", **_args(filters)))


@bp.post("/dead-letters/discard")
@role_required(Role.RECRUITER)
def discard() -> ResponseReturnValue:
    filters = _filters()
    try:
        count = svc.discard(current_org.id, current_user, _ids(), request.form.get("reason", ""))
    except svc.DeadLetterError as exc:
        db.session.rollback()
        if _ids():  # the reason is what is missing: said at the reason
            return index(400, reason_error=str(exc))
        return index(400, str(exc))
    db.session.commit()
    flash(f"{count} email{'' if count == 1 else 's'} discarded.", "info")
    return redirect(url_for(".index", **_args(filters)))
