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
from app.campaigns import bp, reinvite, services
from app.campaigns.forms import CampaignForm, LaunchForm
from app.extensions import db
from app.ids import id_from, ids_from
from app.invitations import booking
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
from app.outbox.queue import kick_dispatcher
from app.results import services as results
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
    form.follow_up_template_id.choices = [SelectChoice("", "No follow-up")] + [
        SelectChoice(str(t.id), t.name) for t in results.follow_up_templates(current_org)
    ]


def _follow_up(form: CampaignForm) -> tuple[int | None, int]:
    """The follow-up template chosen (one of this org's, else the form is refused) and hours."""
    raw = form.follow_up_template_id.data or ""
    offered = {c.value for c in form.follow_up_template_id.choices}
    if raw not in offered:
        raise services.CampaignError("Choose one of your follow-up templates.")
    return (int(raw) if raw else None), form.follow_up_hours.data or 24


def _audience(form: CampaignForm) -> dict:
    audience = {k: v for k, v in (("tag", form.tag.data), ("q", (form.q.data or "").strip())) if v}
    ids = ids_from(form.ids.data)
    if ids:  # only this org's candidates can match: the audience query is scoped to the org
        audience["ids"] = ids
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
    ids = ids_from(request.args.get("ids"))
    if ids:
        audience["ids"] = ids
    job_id = id_from(request.args.get("job_id"))  # those invited for it already are left out
    job_id = job_id if job_id is not None and job_id < 2**31 else None
    counts = services.count(current_org, audience, job_id=job_id)
    return render_template("campaigns/_count.html", counts=counts)


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.RECRUITER)
def new() -> ResponseReturnValue:
    form = CampaignForm()
    _choices(form)
    if request.method == "GET" and request.args.getlist("candidate"):
        form.ids.data = ",".join(x for x in request.args.getlist("candidate") if id_from(x))
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
            follow_up = _follow_up(form)
            tz = current_org.timezone
            scheduling = services.scheduling_choice(form.scheduling.data, form.slot_starts_at.data)
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
                scheduling=scheduling,
            )
            campaign.tracking_enabled = bool(form.tracking.data) and current_org.tracking_enabled
            campaign.follow_up_template_id, campaign.follow_up_hours = follow_up
            db.session.commit()
        except services.CampaignError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            if campaign.scheduling == "slots":
                flash("Now add the slots candidates pick from; then review and send.", "success")
                return redirect(url_for("schedule.show", campaign_id=campaign.id))
            return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    audience = _audience(form)
    job_id = form.job_id.data if isinstance(form.job_id.data, int) else None
    counts = services.count(current_org, audience, job_id=job_id)
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
    if campaign.scheduling == "slots":
        context["slots"] = services.slot_counts(campaign)
    if campaign.status != "draft":
        context["results"] = results.summary(campaign)
        context["recipients"] = db.session.scalars(
            scoped(Message)
            .where(Message.campaign_id == campaign.id, Message.kind == "invitation")
            .order_by(Message.id)
            .limit(RECIPIENTS_SHOWN)
        ).all()
        invited = [m.invitation_id for m in context["recipients"] if m.invitation_id]
        answered = db.session.scalars(
            select(Invitation).where(
                Invitation.org_id == current_org.id, Invitation.id.in_(invited)
            )
        ).all()
        context["answers"] = {i.id: i.status for i in answered}  # shown beside the delivery
        context["declines"] = {i.id: i for i in answered if i.status == "declined"}
        if campaign.scheduling == "slots":
            context["no_slot_fits"] = booking.no_slot_fits_notes(current_org, campaign.id)
    if campaign.status == "draft":
        context["counts"] = services.count(current_org, campaign.audience, job_id=campaign.job_id)
        context["invited"] = reinvite.among(
            current_org, campaign, services.audience_query(current_org, campaign.audience)
        )
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


@bp.post("/<int:campaign_id>/include-invited")
@role_required(Role.RECRUITER)
def include_invited(campaign_id: int) -> ResponseReturnValue:
    """Invite again, knowingly, those who already hold an invitation for this job (or not)."""
    campaign = get_for_org_or_404(Campaign, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        flash("This campaign was already sent or scheduled.", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id)), 303
    include = request.form.get("include") == "yes"
    campaign.audience = {**campaign.audience, "include_invited": include}
    db.session.commit()
    flash(
        "Those already invited for this job are included: their earlier invitation is replaced "
        "when this one goes out."
        if include
        else "Those already invited for this job are left out.",
        "success",
    )
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


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
