"""GET /campaigns/<id>/results: every recipient, 50 a page, filtered by state and searched by
name or email (HTMX swaps the rows, links keep their href); the same as CSV; attended / no-show
once the interview ended; the campaign's follow-up setting."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from app.extensions import db
from app.models import Campaign, Role
from app.results import bp, export, follow_up, services
from app.results.forms import FollowUpForm
from app.results.query import ATTENDANCE, LABELS, STATES, reason_label
from app.tenancy import current_org, current_role, get_for_org_or_404, role_required


def _filters() -> tuple[str | None, str]:
    state = request.args.get("state") or None
    if state is not None and state not in LABELS:
        abort(400, description="Choose one of the states in the list.")
    return state, (request.args.get("q") or "").strip()[:100]


def _follow_up_form(campaign: Campaign) -> FollowUpForm:
    form = FollowUpForm(
        template_id=str(campaign.follow_up_template_id or ""), hours=campaign.follow_up_hours
    )
    _offer(form)
    return form


def _offer(form: FollowUpForm) -> None:
    form.template_id.choices = [SelectChoice("", "No follow-up")] + [
        SelectChoice(str(t.id), t.name) for t in services.follow_up_templates(current_org)
    ]


@bp.get("/<int:campaign_id>/results")
@role_required(Role.VIEWER)
def index(campaign_id: int) -> ResponseReturnValue:
    """The list; an HTMX request for #results-rows gets the rows (and pager) only."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    state, q = _filters()
    number = request.args.get("page", 1, type=int) or 1
    found = services.page(campaign, state, q, number)
    context = {
        "campaign": campaign,
        "found": found,
        "state": state,
        "q": q,
        "states": STATES,
        "labels": LABELS,
        "attendance": ATTENDANCE,
        "reason_label": reason_label,
        "can_edit": current_role().at_least(Role.RECRUITER),
        "can_mark": services.can_mark,
        "nav_section": "campaigns",
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "results-rows":
        return render_template("results/_rows.html", **context)
    context["form"] = form = _follow_up_form(campaign)
    names = {c.value: c.label for c in form.template_id.choices}
    context["follow_up_name"] = names.get(form.template_id.data, "A template since deleted")
    context["waiting"] = follow_up.pending_count(campaign) if campaign.follow_up_template_id else 0
    return render_template("results/index.html", **context)


@bp.get("/<int:campaign_id>/results.csv")
@role_required(Role.VIEWER)
def csv_export(campaign_id: int) -> Response:
    """The recipients the filters show, streamed (bounded memory however many there are)."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    state, q = _filters()
    return export.response(campaign, state, q, current_org.timezone)


def _back(campaign: Campaign) -> str:
    """Where a plain form post returns: the list with its filters (only a path of this list)."""
    back = request.form.get("back") or ""
    parts = urlsplit(back)
    listing = url_for("results.index", campaign_id=campaign.id)
    if parts.scheme or parts.netloc or parts.path != listing:
        return listing
    return back


@bp.post("/<int:campaign_id>/results/<int:invitation_id>/attendance")
@role_required(Role.RECRUITER)
def attendance(campaign_id: int, invitation_id: int) -> ResponseReturnValue:
    """Attended or no-show; HTMX gets the row back, a plain post the list again."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    value = request.form.get("attended", "")
    error = None
    try:
        row = services.mark_attendance(current_org, campaign, invitation_id, value)
    except services.ResultsError as exc:
        db.session.rollback()
        error, row = str(exc), services.recipient(campaign, invitation_id)
    if row is None:
        abort(404)
    db.session.commit()
    if request.headers.get("HX-Request"):  # the row again, saying what went wrong if it did
        return render_template(
            "results/_row.html",
            campaign=campaign,
            r=row,
            labels=LABELS,
            attendance=ATTENDANCE,
            reason_label=reason_label,
            can_edit=True,
            can_mark=services.can_mark,
            back=request.form.get("back") or "",
            error=error,
        )
    if error:
        flash(error, "error")
        return redirect(_back(campaign), 303)
    flash(f"Marked {ATTENDANCE[value].lower()}.", "success")
    return redirect(_back(campaign), 303)


@bp.post("/<int:campaign_id>/follow-up")
@role_required(Role.RECRUITER)
def follow_up_setting(campaign_id: int) -> ResponseReturnValue:
    """Choose the follow-up email and its delay (a plain form on the results page)."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    form = FollowUpForm()
    _offer(form)
    listing = url_for("results.index", campaign_id=campaign.id)
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(listing + "#follow-up", 303)
    raw = form.template_id.data or ""
    try:
        template_id = int(raw) if raw else None
        services.set_follow_up(current_org, campaign, current_user, template_id, form.hours.data)
    except (ValueError, services.ResultsError) as exc:
        db.session.rollback()
        message = str(exc) if isinstance(exc, services.ResultsError) else "Choose a template."
        flash(message, "error")
        return redirect(listing + "#follow-up", 303)
    db.session.commit()
    flash("Follow-up saved." if template_id else "No follow-up for this campaign.", "success")
    return redirect(listing + "#follow-up", 303)
