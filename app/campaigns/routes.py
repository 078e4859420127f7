"""Campaign routes: list, new (with a live recipient count), review, send or schedule, progress,
pause, resume, cancel, resend to failed."""

from __future__ import annotations

from datetime import datetime

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select
from wtforms.fields.choices import SelectChoice

from app import clock
from app.campaigns import bp, services
from app.campaigns.forms import CampaignForm, LaunchForm
from app.extensions import db
from app.mail.outbox import kick_dispatcher
from app.mail.sandbox import TemplateProblem
from app.models import (
    Campaign,
    CampaignStatus,
    Candidate,
    EmailTemplate,
    Invitation,
    Job,
    Message,
    Role,
)
from app.security import PREVIEW_CSP
from app.tenancy import current_org, current_role, get_for_org_or_404, role_required, scoped


def _choices(form: CampaignForm) -> None:
    jobs = db.session.scalars(scoped(Job).where(Job.archived_at.is_(None)).order_by(Job.title))
    form.job_id.choices = [SelectChoice(j.id, j.title) for j in jobs]
    templates = db.session.scalars(
        scoped(EmailTemplate)
        .where(EmailTemplate.deleted_at.is_(None))
        .order_by(EmailTemplate.kind, EmailTemplate.name)
    ).all()
    # invitation templates first: a campaign invites (a cancellation is rarely what is meant)
    invitations = [SelectChoice(t.id, t.name) for t in templates if t.kind == "invitation"]
    others = [
        SelectChoice(t.id, f"{t.name} ({t.kind_enum.label.lower()})")
        for t in templates
        if t.kind != "invitation"
    ]
    form.template_id.choices = {"Invitation templates": invitations}
    if others:
        form.template_id.choices["Other kinds"] = others
    tags = db.session.scalars(
        select(func.unnest(Candidate.tags))
        .where(Candidate.org_id == current_org.id)
        .distinct()
        .order_by(func.unnest(Candidate.tags))
    )
    form.tag.choices = [SelectChoice("", "All candidates")] + [SelectChoice(t, t) for t in tags]


def _audience(form: CampaignForm) -> dict:
    audience = {k: v for k, v in (("tag", form.tag.data), ("q", (form.q.data or "").strip())) if v}
    ids = [int(x) for x in (form.ids.data or "").split(",") if x.strip().isdigit()][:100_000]
    if ids:  # only this org's candidates can match: the audience query is scoped to the org
        audience["ids"] = [i for i in ids if i < 2**62]
    return audience


@bp.get("/")
@role_required(Role.VIEWER)
def index() -> ResponseReturnValue:
    campaigns = db.session.scalars(scoped(Campaign).order_by(Campaign.id.desc())).all()
    drafts = [c for c in campaigns if c.status == CampaignStatus.DRAFT][:DRAFTS_COUNTED]
    answers: dict[int, dict[str, int]] = {}  # per campaign: accepted, declined
    sent = [c.id for c in campaigns if c.status != CampaignStatus.DRAFT]
    if sent:
        for campaign_id, status, n in db.session.execute(
            select(Invitation.campaign_id, Invitation.status, func.count())
            .where(
                Invitation.org_id == current_org.id,
                Invitation.campaign_id.in_(sent),
                Invitation.status.in_(("accepted", "declined")),
            )
            .group_by(Invitation.campaign_id, Invitation.status)
        ):
            answers.setdefault(campaign_id, {})[status] = n
    return render_template(
        "campaigns/index.html",
        campaigns=campaigns,
        answers=answers,
        # a draft has written no messages yet: who it would go to if sent now
        audience={c.id: services.count(current_org, c.audience)["recipients"] for c in drafts},
        can_send=current_role().at_least(Role.RECRUITER),
    )


DRAFTS_COUNTED = 50  # drafts whose audience the list counts (one query each)


@bp.get("/count")
@role_required(Role.RECRUITER)
def audience_count() -> ResponseReturnValue:
    """Live recipient count while the audience is chosen (HTMX)."""
    audience = {k: v for k in ("tag", "q") if (v := (request.args.get(k) or "").strip())}
    ids = [int(x) for x in (request.args.get("ids") or "").split(",") if x.strip().isdigit()]
    if ids:
        audience["ids"] = [i for i in ids if i < 2**62]
    return render_template("campaigns/_count.html", counts=services.count(current_org, audience))


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.RECRUITER)
def new() -> ResponseReturnValue:
    form = CampaignForm()
    _choices(form)
    if request.method == "GET" and request.args.getlist("candidate"):
        form.ids.data = ",".join(x for x in request.args.getlist("candidate") if x.isdigit())
    error = None
    if form.validate_on_submit():
        job = get_for_org_or_404(Job, form.job_id.data) if form.job_id.data else None
        template = (
            get_for_org_or_404(EmailTemplate, form.template_id.data)
            if form.template_id.data
            else None
        )
        try:
            if job is None or template is None:
                raise services.CampaignError("Choose a job and a template.")
            tz = current_org.timezone
            for when in (form.respond_by.data, form.slot_starts_at.data):
                if when and services.local_to_utc(when, tz) <= clock.now():
                    raise services.CampaignError(
                        "Dates for the reply and the interview must be in the future."
                    )
            campaign = services.create(
                current_org,
                current_user,
                name=form.name.data,
                job=job,
                template=template,
                audience=_audience(form),
                respond_by=services.local_to_utc(form.respond_by.data, tz)
                if form.respond_by.data
                else None,
                slot_starts_at=services.local_to_utc(form.slot_starts_at.data, tz)
                if form.slot_starts_at.data
                else None,
                location=form.location.data,
            )
            campaign.tracking_enabled = bool(form.tracking.data) and current_org.tracking_enabled
            db.session.commit()
        except services.CampaignError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    audience = _audience(form)
    counts = services.count(current_org, audience)
    picked, picked_count = [], 0  # the hand-picked candidates of this org: how many, who
    if "ids" in audience:
        mine = scoped(Candidate).where(Candidate.id.in_(audience["ids"]))
        picked_count = db.session.scalar(mine.with_only_columns(func.count()).order_by(None))
        picked = db.session.scalars(
            mine.order_by(Candidate.first_name, Candidate.last_name, Candidate.id).limit(5)
        ).all()
    status = 400 if request.method == "POST" else 200
    return render_template(
        "campaigns/new.html",
        form=form,
        counts=counts,
        error=error,
        picked=picked,
        picked_count=picked_count,
    ), status


def _progress(campaign: Campaign) -> dict[str, int]:
    return services.progress(campaign, current_org.send_rate_per_minute)


@bp.get("/<int:campaign_id>")
@role_required(Role.VIEWER)
def show(campaign_id: int) -> ResponseReturnValue:
    """Review (a draft) or progress (everything after)."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    if request.headers.get("HX-Request"):
        was = request.args.get("was")
        if was and was != campaign.status:  # sent, paused, started: the header and buttons too
            return "", 204, {"HX-Refresh": "true"}
        return render_template(
            "campaigns/_progress.html", campaign=campaign, progress=_progress(campaign)
        )
    context = {
        "campaign": campaign,
        "progress": _progress(campaign),
        "can_send": current_role().at_least(Role.RECRUITER),
        "form": LaunchForm(),
    }
    if campaign.status != "draft":
        context["recipients"] = db.session.scalars(
            scoped(Message)
            .where(Message.campaign_id == campaign.id, Message.kind == "invitation")
            .order_by(Message.id)
            .limit(RECIPIENTS_SHOWN)
        ).all()
        invited = [m.invitation_id for m in context["recipients"] if m.invitation_id]
        context["answers"] = dict(  # what each candidate answered, shown beside the delivery
            db.session.execute(
                select(Invitation.id, Invitation.status).where(
                    Invitation.org_id == current_org.id, Invitation.id.in_(invited)
                )
            ).all()
        )
    if campaign.status == "draft":
        context["counts"] = services.count(current_org, campaign.audience)
        person = services.sample_recipient(current_org, campaign)
        context["sample"] = person
        try:
            context["preview"] = (
                services.preview_for(current_org, campaign, person) if person else None
            )
        except TemplateProblem as exc:
            context["preview_error"] = exc
    body = render_template("campaigns/show.html", **context)
    return body, 200, {"Content-Security-Policy": PREVIEW_CSP}


RECIPIENTS_SHOWN = 100


@bp.post("/<int:campaign_id>/launch")
@role_required(Role.RECRUITER)
def launch(campaign_id: int) -> ResponseReturnValue:
    """Send now, or schedule at a time in the org's time zone."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    form = LaunchForm()
    try:
        at = None
        if form.mode.data == "later":
            if not form.validate_on_submit() or form.at.data is None:
                raise services.CampaignError("Pick the date and time to send at.")
            at = services.local_to_utc(form.at.data, current_org.timezone)
        written = services.launch(current_org, campaign, current_user, at)
    except services.CampaignError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id)), 303
    db.session.commit()
    if not at:
        kick_dispatcher()
    when = (
        f"scheduled for {form.at.data.day} {form.at.data:%b %Y %H:%M} ({current_org.timezone})"
        if at
        else "sending now"
    )
    flash(f"{written} invitation{'s' if written != 1 else ''} {when}.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


def _action(campaign_id: int, action, done: str, wake: bool = True) -> ResponseReturnValue:  # noqa: ANN001
    """Run a campaign action, commit it and (unless `wake` is off) wake the dispatchers; a
    refused action changes nothing and says why."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    try:
        result = action(current_org, campaign, current_user)
    except services.CampaignError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        if wake:
            kick_dispatcher()
        flash(done.format(n=result), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/pause")
@role_required(Role.RECRUITER)
def pause(campaign_id: int) -> ResponseReturnValue:
    return _action(
        campaign_id,
        services.pause,
        "Paused. Nothing more is sent until you resume.",
        wake=False,
    )


@bp.post("/<int:campaign_id>/resume")
@role_required(Role.RECRUITER)
def resume(campaign_id: int) -> ResponseReturnValue:
    role = current_role()
    return _action(
        campaign_id,
        lambda org, campaign, user: services.resume(org, campaign, user, role),
        "Resumed.",
    )


@bp.post("/<int:campaign_id>/cancel")
@role_required(Role.RECRUITER)
def cancel(campaign_id: int) -> ResponseReturnValue:
    return _action(
        campaign_id,
        services.cancel,
        "Cancelled: {n} unsent emails will not go out; open links no longer work.",
    )


@bp.post("/<int:campaign_id>/resend-failed")
@role_required(Role.RECRUITER)
def resend_failed(campaign_id: int) -> ResponseReturnValue:
    return _action(campaign_id, services.resend_failed, "{n} failed emails queued again.")


@bp.post("/<int:campaign_id>/move")
@role_required(Role.RECRUITER)
def move(campaign_id: int) -> ResponseReturnValue:
    """Move the interview: everyone invited gets the new time and an updated calendar entry."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    raw = (request.form.get("starts_at") or "").strip()
    try:
        try:
            local = datetime.strptime(raw, "%Y-%m-%dT%H:%M")
        except ValueError as exc:
            raise services.CampaignError("Pick the new date and time.") from exc
        starts_at = services.local_to_utc(local, current_org.timezone)
        notified = services.move_interview(current_org, campaign, current_user, starts_at)
    except services.CampaignError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id)), 303
    db.session.commit()
    kick_dispatcher()
    flash(
        f"Interview moved; {notified} candidate{'s' if notified != 1 else ''} notified with "
        "an updated calendar entry.",
        "success",
    )
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))
