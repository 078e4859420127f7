"""Jobs and candidates routes."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, or_, select

from app import clock
from app.audit import audit
from app.candidates import bp, services
from app.candidates.forms import CandidateForm, JobForm, TagsForm
from app.extensions import db
from app.invitations.lifecycle import revoke_open
from app.like import ESCAPE, contains
from app.models import (
    Campaign,
    Candidate,
    Invitation,
    InvitationStatus,
    Job,
    Message,
    Role,
    Suppression,
)
from app.suppressions.rules import REASONS, SCOPES, normalise
from app.tenancy import current_org, current_role, get_for_org_or_404, role_required, scoped

PAGE = 50


# ---- jobs -----------------------------------------------------------------------------------


@bp.get("/jobs/")
@role_required(Role.VIEWER)
def jobs() -> ResponseReturnValue:
    show_archived = request.args.get("archived") == "1"
    query = scoped(Job).where(
        Job.archived_at.isnot(None) if show_archived else Job.archived_at.is_(None)
    )
    return render_template(
        "candidates/jobs.html",
        jobs=db.session.scalars(query.order_by(Job.title)).all(),
        show_archived=show_archived,
        can_edit=current_role().at_least(Role.RECRUITER),
    )


@bp.route("/jobs/new", methods=["GET", "POST"])
@role_required(Role.RECRUITER)
def new_job() -> ResponseReturnValue:
    form = JobForm()
    if form.validate_on_submit() and _custom_ok(form):
        job = Job(org_id=current_org.id)
        form.populate_obj(job)
        job.custom = form.custom_fields()
        db.session.add(job)
        audit(current_org.id, current_user, "job.created", job=job.title)
        db.session.commit()
        flash(f"Job “{job.title}” created.", "success")
        return redirect(url_for("candidates.jobs"))
    return render_template("candidates/job_form.html", form=form, job=None), (
        400 if request.method == "POST" else 200
    )


@bp.route("/jobs/<int:job_id>", methods=["GET", "POST"])
@role_required(Role.VIEWER)
def edit_job(job_id: int) -> ResponseReturnValue:
    job = get_for_org_or_404(Job, job_id)
    form = JobForm(obj=job)
    if request.method == "GET":
        form.custom_text.data = "\n".join(f"{k}: {v}" for k, v in (job.custom or {}).items())
    if request.method == "POST":
        if not current_role().at_least(Role.RECRUITER):
            abort(403)
        if form.validate_on_submit() and _custom_ok(form):
            form.populate_obj(job)
            job.custom = form.custom_fields()
            db.session.commit()
            flash("Job saved.", "success")
            return redirect(url_for("candidates.jobs"))
    return render_template("candidates/job_form.html", form=form, job=job), (
        400 if request.method == "POST" else 200
    )


def _custom_ok(form: JobForm) -> bool:
    if form.custom_fields() is None:
        form.custom_text.errors = list(form.custom_text.errors) + [
            "Write one field per line as “name: value” (names other than the standard fields)."
        ]
        return False
    return True


@bp.post("/jobs/<int:job_id>/archive")
@role_required(Role.RECRUITER)
def archive_job(job_id: int) -> ResponseReturnValue:
    job = get_for_org_or_404(Job, job_id)
    job.archived_at = None if job.archived_at else clock.now()
    audit(
        current_org.id,
        current_user,
        "job.archived" if job.archived_at else "job.restored",
        job=job.title,
    )
    db.session.commit()
    flash(f"“{job.title}” {'archived' if job.archived_at else 'restored'}.", "info")
    return redirect(url_for("candidates.jobs"))


# ---- candidates -----------------------------------------------------------------------------


def _candidate_query():  # noqa: ANN202
    query = scoped(Candidate)
    q = (request.args.get("q") or "").strip()
    if q:
        like = contains(q[:100])
        query = query.where(
            or_(
                Candidate.email.ilike(like, escape=ESCAPE),
                Candidate.first_name.ilike(like, escape=ESCAPE),
                Candidate.last_name.ilike(like, escape=ESCAPE),
            )
        )
    tag = (request.args.get("tag") or "").strip()
    if tag:
        query = query.where(Candidate.tags.any(tag))
    return query


@bp.get("/candidates/")
@role_required(Role.VIEWER)
def candidates() -> ResponseReturnValue:
    """Search by name or email, filter by tag, 50 per page."""
    page = max(request.args.get("page", 1, type=int), 1)
    query = _candidate_query()
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(Candidate.id.desc()).limit(PAGE).offset((page - 1) * PAGE)
    ).all()
    tags = db.session.scalars(
        select(func.unnest(Candidate.tags))
        .where(Candidate.org_id == current_org.id)
        .distinct()
        .order_by(func.unnest(Candidate.tags))
        .limit(200)
    ).all()
    template = (
        "candidates/_rows.html" if request.headers.get("HX-Request") else "candidates/list.html"
    )
    return render_template(
        template,
        candidates=rows,
        total=total,
        page=page,
        pages=max((total + PAGE - 1) // PAGE, 1),
        tags=tags,
        q=request.args.get("q", ""),
        tag=request.args.get("tag", ""),
        can_edit=current_role().at_least(Role.RECRUITER),
    )


def _profile(form: CandidateForm) -> services.Profile:
    return services.Profile(
        email=form.email.data,
        first_name=(form.first_name.data or "").strip(),
        last_name=(form.last_name.data or "").strip(),
        phone=(form.phone.data or "").strip() or None,
        timezone=form.timezone.data or None,
        custom=form.custom_fields(),
    )


def _candidate_form(form: CandidateForm, person: Candidate | None) -> ResponseReturnValue:
    form.offer_rows()
    status = 400 if request.method == "POST" else 200
    return render_template("candidates/form.html", form=form, candidate=person), status


@bp.route("/candidates/new", methods=["GET", "POST"])
@role_required(Role.RECRUITER)
def new_candidate() -> ResponseReturnValue:
    """Add one candidate by hand (the CSV import adds many)."""
    form = CandidateForm()
    if form.validate_on_submit():
        try:
            person = services.add(current_org, current_user, _profile(form))
        except services.CandidateError as exc:
            form.email.errors = [str(exc)]
        else:
            db.session.commit()
            flash(f"{person.full_name} added.", "success")
            return redirect(url_for("candidates.candidate", candidate_id=person.id))
    return _candidate_form(form, None)


@bp.route("/candidates/<int:candidate_id>/edit", methods=["GET", "POST"])
@role_required(Role.RECRUITER)
def edit_candidate(candidate_id: int) -> ResponseReturnValue:
    """Name, email, phone, time zone and custom fields (tags are edited on the page itself)."""
    person = get_for_org_or_404(Candidate, candidate_id)
    rows = [{"name": k, "value": v} for k, v in (person.custom or {}).items()]
    form = CandidateForm(
        zone=person.timezone,
        data={
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "phone": person.phone,
            "timezone": person.timezone or "",
            "custom": rows,
        },
    )
    if form.validate_on_submit():
        try:
            services.edit(current_org, current_user, person, _profile(form))
        except services.CandidateError as exc:
            form.email.errors = [str(exc)]
        else:
            db.session.commit()
            flash("Candidate saved.", "success")
            return redirect(url_for("candidates.candidate", candidate_id=person.id))
    return _candidate_form(form, person)


@bp.post("/candidates/<int:candidate_id>/delete")
@role_required(Role.RECRUITER)
def delete_candidate(candidate_id: int) -> ResponseReturnValue:
    """Delete a candidate added by mistake (the page asks first); their mail history stays."""
    person = get_for_org_or_404(Candidate, candidate_id)
    name = person.full_name
    stopped = services.delete(current_org, current_user, person)
    db.session.commit()
    note = (
        f" {stopped} unsent email{'s' if stopped != 1 else ''} will not go out." if stopped else ""
    )
    flash(f"{name} deleted. Emails already sent stay in the history.{note}", "info")
    return redirect(url_for("candidates.candidates"))


@bp.route("/candidates/<int:candidate_id>", methods=["GET", "POST"])
@role_required(Role.VIEWER)
def candidate(candidate_id: int) -> ResponseReturnValue:
    """A candidate and every message sent to them (the notification history)."""
    person = get_for_org_or_404(Candidate, candidate_id)
    form = TagsForm(data={"tags": ", ".join(person.tags)})
    if request.method == "POST":
        if not current_role().at_least(Role.RECRUITER):
            abort(403)
        if form.validate_on_submit():
            person.tags = form.cleaned()
            person.updated_at = clock.now()
            db.session.commit()
            flash("Tags saved.", "success")
            return redirect(url_for("candidates.candidate", candidate_id=person.id))
    messages = db.session.scalars(
        scoped(Message).where(Message.candidate_id == person.id).order_by(Message.id.desc())
    ).all()
    invitations = db.session.execute(
        scoped(Invitation)
        .add_columns(Campaign, Job)
        .join(Campaign, Campaign.id == Invitation.campaign_id)
        .join(Job, Job.id == Invitation.job_id)
        .where(Invitation.candidate_id == person.id, Campaign.org_id == person.org_id)
        .order_by(Invitation.id.desc())
    ).all()
    suppression = db.session.scalar(
        scoped(Suppression).where(Suppression.email == normalise(person.email))
    )
    now = clock.now()
    return render_template(
        "candidates/detail.html",
        candidate=person,
        messages=messages,
        invitations=invitations,
        open_links=any(
            i.status == InvitationStatus.PENDING and i.expires_at > now for i, _, _ in invitations
        ),
        suppression=suppression,
        reasons=REASONS,
        scopes=SCOPES,
        now=now,
        form=form,
        can_edit=current_role().at_least(Role.RECRUITER),
    ), (400 if request.method == "POST" else 200)  # (a valid POST redirected above)


@bp.post("/candidates/<int:candidate_id>/revoke")
@role_required(Role.RECRUITER)
def revoke_invitations(candidate_id: int) -> ResponseReturnValue:
    """Revoke this candidate's open invitation links (every campaign)."""
    person = get_for_org_or_404(Candidate, candidate_id)
    revoked = revoke_open(current_org.id, Invitation.candidate_id == person.id)
    audit(current_org.id, current_user, "candidate.invitations_revoked", revoked=revoked)
    db.session.commit()
    flash(f"Revoked {revoked} open invitation link{'s' if revoked != 1 else ''}.", "info")
    return redirect(url_for("candidates.candidate", candidate_id=person.id))
