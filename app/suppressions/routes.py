"""Suppression list page. Everyone sees it; recruiters add; admins remove and import."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.extensions import db
from app.models import Role, Suppression
from app.suppressions import bp
from app.suppressions import services as svc
from app.suppressions.rules import REASONS, SCOPES
from app.tenancy import current_org, current_role, get_for_org_or_404, role_required

MAX_IMPORT_BYTES = 5 * 1024 * 1024


def _page(status: int = 200, **extra: object) -> ResponseReturnValue:
    q = request.values.get("q", "")
    rows = svc.search(current_org.id, q)
    context = {"rows": rows, "q": q, "reasons": REASONS, "scopes": SCOPES, **extra}
    if request.headers.get("HX-Request") and request.method == "GET":
        return render_template("suppressions/_rows.html", **context)
    return render_template("suppressions/index.html", **context), status


@bp.get("/suppressions")
@role_required(Role.VIEWER)
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/suppressions")
@role_required(Role.RECRUITER)
def add() -> ResponseReturnValue:
    form = request.form
    try:
        svc.add(
            current_org.id,
            current_user,
            form.get("email", ""),
            form.get("scope", "all"),
            form.get("note", ""),
        )
    except svc.SuppressionError as exc:
        db.session.rollback()
        return _page(400, error=str(exc), email=form.get("email", ""), note=form.get("note", ""))
    db.session.commit()
    flash(f"{svc.valid_address(form['email'])} will not be mailed.", "success")
    return redirect(url_for(".index"))


@bp.post("/suppressions/<int:suppression_id>/remove")
@role_required(Role.ADMIN)
def remove(suppression_id: int) -> ResponseReturnValue:
    row = get_for_org_or_404(Suppression, suppression_id)
    email = row.email
    svc.remove(current_org.id, current_user, row)
    db.session.commit()
    flash(f"{email} can be mailed again.", "info")
    return redirect(url_for(".index"))


@bp.post("/suppressions/import")
@role_required(Role.RECRUITER)
def import_csv() -> ResponseReturnValue:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(400, import_error="Choose a CSV file.")
    data = upload.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        return _page(
            400, import_error="The file is larger than 5 MB; split it and import the parts."
        )
    try:
        report = svc.import_csv(
            current_org.id, current_user, data, strong=current_role().at_least(Role.ADMIN)
        )
    except svc.SuppressionError as exc:
        db.session.rollback()
        return _page(400, import_error=str(exc))
    db.session.commit()
    if report.added:
        flash(f"{report.added} address{'es' if report.added != 1 else ''} suppressed.", "success")
    return _page(200, report=report)


@bp.get("/suppressions.csv")
@role_required(Role.VIEWER)
def export() -> Response:
    return Response(
        svc.export_csv(current_org.id),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=suppressions.csv"},
    )
