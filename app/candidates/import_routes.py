"""CSV import of candidates, in three steps: upload, map the columns, watch the progress."""

from __future__ import annotations

import csv
import io

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app import clock
from app.audit import audit
from app.candidates import bp, importer
from app.candidates.forms import UploadForm
from app.csvsafe import neutralise
from app.extensions import db
from app.models import CandidateImport, CandidateImportProblem, Role
from app.queues import default_queue
from app.tenancy import current_org, get_for_org_or_404, role_required, scoped


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
            item.status, item.queued_at = "queued", clock.now()
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
    writer.writerow(["line", "reason", *(neutralise(h) for h in item.header)])
    for problem in db.session.scalars(
        scoped(CandidateImportProblem)
        .where(CandidateImportProblem.import_id == item.id)
        .order_by(CandidateImportProblem.line)
    ):
        writer.writerow(
            [
                problem.line,
                neutralise(problem.reason),
                *(neutralise(str(c)) for c in problem.raw),
            ]
        )
    name = f"import-{item.id}-problems.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
