"""Jobs and candidates routes."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, or_, select

from app import clock
from app.candidates import bp, importer
from app.candidates.forms import JobForm, TagsForm, UploadForm
from app.extensions import db
from app.jobs.queues import default_queue
from app.like import ESCAPE, contains
from app.models import (
    Campaign,
    Candidate,
    CandidateImport,
    CandidateImportProblem,
    Invitation,
    InvitationStatus,
    Job,
    Message,
    Role,
    Suppression,
)
from app.suppressions.rules import REASONS, SCOPES, normalise
from app.team.services import audit
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


# ---- CSV import -----------------------------------------------------------------------------


@bp.route("/candidates/import", methods=["GET", "POST"])
@role_required(Role.RECRUITER)
def upload() -> ResponseReturnValue:
    """Step 1: upload a CSV (UTF-8, Windows-1252 or Latin-1; comma, semicolon or tab). It is
    stored as it streams in, never read whole."""
    form = UploadForm()
    error = None
    if form.validate_on_submit():
        file = request.files.get("file")
        if not (file and file.filename):
            error = "Choose a CSV file to import."
        else:
            item = CandidateImport(
                org_id=current_org.id,
                filename=(file.filename or "")[:255],
                encoding="",
                delimiter="",
                created_by_id=current_user.id,
            )
            db.session.add(item)
            db.session.flush()
            try:
                importer.receive(item, file.stream)
            except importer.ImportFileError as exc:
                db.session.rollback()
                error = str(exc)
            else:
                db.session.commit()
                return redirect(url_for("candidates.mapping", candidate_import_id=item.id))
    status = 400 if request.method == "POST" else 200
    return render_template("candidates/upload.html", form=form, error=error), status


@bp.route("/candidates/imports/<int:candidate_import_id>", methods=["GET", "POST"])
@role_required(Role.RECRUITER)
def mapping(candidate_import_id: int) -> ResponseReturnValue:
    """Step 2: preview the first rows, map columns to fields, choose skip or update."""
    item = get_for_org_or_404(CandidateImport, candidate_import_id)
    if item.status != "uploaded":
        return redirect(url_for("candidates.progress", candidate_import_id=item.id))
    try:
        parsed = importer.parse(item.id, item.encoding)
    except importer.ImportFileError as exc:  # its file is gone or was never readable
        flash(f"{exc} Upload the file again.", "error")
        return redirect(url_for("candidates.upload"))
    error = None
    if request.method == "POST":
        choices = {str(i): request.form.get(f"col-{i}", "ignore") for i in range(len(item.header))}
        allowed = set(importer.FIELDS) | {"ignore"}
        choices = {
            k: v if v in allowed or v.startswith("custom:") else "ignore"
            for k, v in choices.items()
        }
        named = [v for v in choices.values() if v in importer.FIELDS]
        if "email" not in named:
            error = "Choose the column that holds the email address."
        elif len(named) != len(set(named)):
            error = "Each field can come from one column only."
        else:
            item.mapping = choices
            item.on_duplicate = "update" if request.form.get("on_duplicate") == "update" else "skip"
            item.status = "queued"
            audit(current_org.id, current_user, "candidates.import", file=item.filename)
            db.session.commit()
            default_queue().enqueue("app.jobs.imports.run_import", item.id, job_timeout=3600)
            return redirect(url_for("candidates.progress", candidate_import_id=item.id))
    return render_template(
        "candidates/mapping.html",
        item=item,
        parsed=parsed,
        fields=importer.FIELDS,
        encoding=importer.encoding_label(item.encoding),
        error=error,
    ), 400 if error else 200


@bp.get("/candidates/imports/<int:candidate_import_id>/progress")
@role_required(Role.RECRUITER)
def progress(candidate_import_id: int) -> ResponseReturnValue:
    """Step 3: live progress (HTMX polls this), then the summary and the bad rows."""
    item = get_for_org_or_404(CandidateImport, candidate_import_id)
    problems = db.session.scalars(
        scoped(CandidateImportProblem)
        .where(CandidateImportProblem.import_id == item.id)
        .order_by(CandidateImportProblem.line)
        .limit(100)
    ).all()
    fragment = bool(request.headers.get("HX-Request"))
    template = "candidates/_progress.html" if fragment else "candidates/progress.html"
    return render_template(
        template,
        item=item,
        problems=problems,
        fragment=fragment,
        encoding=importer.encoding_label(item.encoding),
    )


@bp.get("/candidates/imports/<int:candidate_import_id>/problems.csv")
@role_required(Role.RECRUITER)
def problems_csv(candidate_import_id: int) -> Response:
    """The rows that were not imported, with line and reason (formulas neutralised)."""
    item = get_for_org_or_404(CandidateImport, candidate_import_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "reason", *(importer.neutralise(h) for h in item.header)])
    for problem in db.session.scalars(
        scoped(CandidateImportProblem)
        .where(CandidateImportProblem.import_id == item.id)
        .order_by(CandidateImportProblem.line)
    ):
        writer.writerow(
            [
                problem.line,
                importer.neutralise(problem.reason),
                *(importer.neutralise(str(c)) for c in problem.raw),
            ]
        )
    name = f"import-{item.id}-problems.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/candidates/<int:candidate_id>/revoke")
@role_required(Role.RECRUITER)
def revoke_invitations(candidate_id: int) -> ResponseReturnValue:
    """Revoke this candidate's open invitation links (every campaign)."""
    from app.campaigns.services import revoke_open

    person = get_for_org_or_404(Candidate, candidate_id)
    revoked = revoke_open(current_org.id, Invitation.candidate_id == person.id)
    audit(current_org.id, current_user, "candidate.invitations_revoked", revoked=revoked)
    db.session.commit()
    flash(f"Revoked {revoked} open invitation link{'s' if revoked != 1 else ''}.", "info")
    return redirect(url_for("candidates.candidate", candidate_id=person.id))
