"""Template editor routes: list, create, edit with live preview, history and diff, test send."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select

from app.extensions import db
from app.ids import id_from
from app.mail import catalogue
from app.mail.build import sender_for
from app.mail.compose import MAX_BODY_BYTES
from app.mail.sandbox import TemplateProblem
from app.models import Candidate, EmailTemplate, Role, TemplateKind, TemplateVersion
from app.security import PREVIEW_CSP
from app.templates_editor import bp, services
from app.templates_editor.forms import NewTemplateForm, RestoreForm, TemplateForm
from app.tenancy import current_org, current_role, get_for_org_or_404, role_required, scoped


def _template(email_template_id: int) -> EmailTemplate:
    template = get_for_org_or_404(EmailTemplate, email_template_id)
    if template.deleted_at is not None:
        abort(404)
    return template


def _samples() -> dict[str, str]:
    """Sample data overrides posted by the editor (fields named sample-<path>): only documented
    plain values; links (invitation, unsubscribe) are always Herald's own."""
    values = {
        key[len("sample-") :]: value.strip()[:500]
        for key, value in request.form.items()
        if catalogue.is_sample_editable(key[len("sample-") :]) and value.strip()
    }
    chosen = id_from(request.form.get("sample-candidate_id"))
    if chosen is not None:
        person = db.session.scalar(scoped(Candidate).where(Candidate.id == chosen))
        if person is not None:  # a real candidate of this org (another org's id: ignored)
            values = {
                "candidate.first_name": person.first_name,
                "candidate.last_name": person.last_name,
                "candidate.full_name": person.full_name,
                "candidate.email": person.email,
                "candidate.phone": person.phone or "",
                "recipient_timezone": person.timezone or "",
                **{f"candidate.custom.{k}": str(v) for k, v in (person.custom or {}).items()},
                **values,
            }
    return values


def _with_preview_csp(body: str, status: int = 200) -> ResponseReturnValue:
    """Pages with an email preview allow inline styles (the email's), still no scripts."""
    return body, status, {"Content-Security-Policy": PREVIEW_CSP}


@bp.get("/")
@role_required(Role.VIEWER)
def index() -> ResponseReturnValue:
    """All templates of the org, grouped by kind."""
    templates = db.session.scalars(
        scoped(EmailTemplate)
        .where(EmailTemplate.deleted_at.is_(None))
        .order_by(EmailTemplate.kind, EmailTemplate.name)
    ).all()
    return render_template(
        "templates_editor/index.html",
        templates=templates,
        can_edit=current_role().at_least(Role.ADMIN),
        kinds=list(TemplateKind),
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new() -> ResponseReturnValue:
    """Start a template of a kind from Herald's default content for it."""
    form = NewTemplateForm()
    if form.validate_on_submit():
        template = services.create(
            current_org, current_user, form.name.data, TemplateKind(form.kind.data)
        )
        db.session.commit()
        flash("Template created from Herald's default. Make it yours.", "success")
        return redirect(url_for("templates_editor.edit", email_template_id=template.id))
    return render_template("templates_editor/new.html", form=form), (
        400 if request.method == "POST" else 200
    )


@bp.post("/defaults")
@role_required(Role.ADMIN)
def add_defaults() -> ResponseReturnValue:
    """Add Herald's default templates (one per kind) to an org that has none."""
    existing = db.session.scalar(
        select(func.count())
        .select_from(EmailTemplate)
        .where(EmailTemplate.org_id == current_org.id, EmailTemplate.deleted_at.is_(None))
    )
    if existing:
        flash("This organization already has templates.", "info")
        return redirect(url_for("templates_editor.index"))
    services.create_defaults(current_org, current_user)
    db.session.commit()
    flash("Added Herald's default templates, one per kind.", "success")
    return redirect(url_for("templates_editor.index"))


def _editor(
    template: EmailTemplate, form: TemplateForm, problems: list | None = None, status: int = 200
) -> ResponseReturnValue:
    version = template.current_version
    preview = error = None
    try:
        preview = services.render(
            current_org,
            template.kind_enum,
            form.subject.data or "",
            form.html.data or "",
            form.text.data,
            services.preview_context(current_org, current_user, {}),
        )
    except TemplateProblem as exc:
        error = exc
    by_field: dict[str, list] = {}
    for problem in problems or []:
        by_field.setdefault(problem.field, []).append(problem)
    body = render_template(
        "templates_editor/edit.html",
        template=template,
        version=version,
        form=form,
        problems=by_field,
        preview=preview,
        error=error,
        catalogue=catalogue.CATALOGUE,
        can_edit=current_role().at_least(Role.ADMIN),
        can_send=current_role().at_least(Role.RECRUITER),
        headers=_headers(preview),
        sample_candidates=db.session.scalars(
            scoped(Candidate).order_by(Candidate.id.desc()).limit(100)
        ).all(),
    )
    return _with_preview_csp(body, status)


def _headers(preview) -> list[tuple[str, str]]:  # noqa: ANN001
    mail_from, extra = sender_for(current_org)
    return [
        ("From", mail_from),
        *extra.items(),
        ("To", "Ada Lovelace <ada@example.com>"),
        ("Subject", preview.subject if preview else "—"),
    ]


@bp.get("/<int:email_template_id>")
@role_required(Role.VIEWER)
def edit(email_template_id: int) -> ResponseReturnValue:
    """The editor (admins) or a read-only view with the preview (everyone else)."""
    template = _template(email_template_id)
    version = template.current_version
    form = TemplateForm(
        data={
            "name": template.name,
            "subject": version.subject,
            "html": version.html,
            "text": version.text or "",
        }
    )
    return _editor(template, form)


@bp.post("/<int:email_template_id>")
@role_required(Role.ADMIN)
def save(email_template_id: int) -> ResponseReturnValue:
    """Save as a new version; problems are shown inline and the edit is kept."""
    template = _template(email_template_id)
    form = TemplateForm()
    if not form.validate_on_submit():
        problems = [  # e.g. a name over 120 characters: said at its field
            services.Problem(name, msg)
            for name, messages in form.errors.items()
            if name in ("name", "subject", "html", "text")
            for msg in messages
        ]
        return _editor(template, form, problems, status=400)
    try:
        version = services.save(
            current_org,
            template,
            current_user,
            name=form.name.data or "",
            subject=form.subject.data or "",
            html=form.html.data or "",
            text=form.text.data,
        )
    except services.InvalidTemplate as exc:
        db.session.rollback()
        return _editor(template, form, exc.problems, status=400)
    db.session.commit()
    if version is None:
        flash("No changes to save.", "info")
    else:
        flash(f"Saved as version {version.number}.", "success")
    return redirect(url_for("templates_editor.edit", email_template_id=template.id))


@bp.post("/<int:email_template_id>/preview")
@role_required(Role.ADMIN)
def preview(email_template_id: int) -> ResponseReturnValue:
    """Render what is in the editor now (HTMX, while typing)."""
    template = _template(email_template_id)
    form = TemplateForm()
    context = services.preview_context(current_org, current_user, _samples())
    if len(form.html.data or "") > MAX_BODY_BYTES or len(form.text.data or "") > MAX_BODY_BYTES:
        error = TemplateProblem(f"The body is over {MAX_BODY_BYTES // 1024} KB.")
        body = render_template("templates_editor/_preview_error.html", error=error)
        return body, 200, {"HX-Retarget": "#preview-error", "HX-Reswap": "innerHTML"}
    try:
        rendered = services.render(
            current_org,
            template.kind_enum,
            form.subject.data or "",
            form.html.data or "",
            form.text.data,
            context,
        )
    except TemplateProblem as exc:
        body = render_template("templates_editor/_preview_error.html", error=exc)
        return body, 200, {"HX-Retarget": "#preview-error", "HX-Reswap": "innerHTML"}
    body = render_template(
        "templates_editor/_preview.html", preview=rendered, headers=_headers(rendered)
    )
    clear_error = '<div id="preview-error" hx-swap-oob="innerHTML"></div>'
    return _with_preview_csp(clear_error + body)


@bp.get("/<int:email_template_id>/history")
@role_required(Role.VIEWER)
def history(email_template_id: int) -> ResponseReturnValue:
    """Every version, and the diff between any two (?a=<number>&b=<number>)."""
    template = _template(email_template_id)
    versions = services.versions(template)
    numbers = {v.number: v for v in versions}
    newest = versions[0].number
    a = numbers.get(request.args.get("a", type=int) or max(newest - 1, 1))
    b = numbers.get(request.args.get("b", type=int) or newest)
    if a is None or b is None:
        abort(404, description="There is no such version of this template.")
    return render_template(
        "templates_editor/history.html",
        template=template,
        versions=versions,
        a=a,
        b=b,
        diff=services.diff(a, b),
        can_edit=current_role().at_least(Role.ADMIN),
    )


@bp.post("/<int:email_template_id>/restore")
@role_required(Role.ADMIN)
def restore(email_template_id: int) -> ResponseReturnValue:
    """Make an earlier version current again (as a new version)."""
    template = _template(email_template_id)
    form = RestoreForm()
    number = form.number.data if form.validate_on_submit() else None
    version = None
    if number is not None and 0 < number < 2**31:
        version = db.session.scalar(
            select(TemplateVersion).where(
                TemplateVersion.template_id == template.id, TemplateVersion.number == number
            )
        )
    if version is None:
        abort(404, description="There is no such version of this template.")
    restored = services.restore(template, version, current_user)
    db.session.commit()
    flash(f"Version {version.number} restored as version {restored.number}.", "success")
    return redirect(url_for("templates_editor.edit", email_template_id=template.id))


@bp.post("/<int:email_template_id>/duplicate")
@role_required(Role.ADMIN)
def duplicate(email_template_id: int) -> ResponseReturnValue:
    copy = services.duplicate(current_org, _template(email_template_id), current_user)
    db.session.commit()
    flash(f"Created “{copy.name}”.", "success")
    return redirect(url_for("templates_editor.edit", email_template_id=copy.id))


@bp.post("/<int:email_template_id>/delete")
@role_required(Role.ADMIN)
def delete(email_template_id: int) -> ResponseReturnValue:
    template = _template(email_template_id)
    try:
        services.delete(current_org, template, current_user)
    except services.TemplateInUse as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("templates_editor.index")), 303
    db.session.commit()
    flash(f"Deleted “{template.name}”. Mail already sent with it keeps its content.", "info")
    return redirect(url_for("templates_editor.index"))


@bp.post("/<int:email_template_id>/default")
@role_required(Role.ADMIN)
def make_default(email_template_id: int) -> ResponseReturnValue:
    template = _template(email_template_id)
    services.make_default(current_org, template, current_user)
    db.session.commit()
    flash(
        f"“{template.name}” is now the default {template.kind_enum.label.lower()} template.",
        "success",
    )
    return redirect(url_for("templates_editor.index"))


@bp.post("/<int:email_template_id>/test")
@role_required(Role.RECRUITER)
def send_test(email_template_id: int) -> ResponseReturnValue:
    """Send the saved version to yourself with sample data, through the real pipeline."""
    template = _template(email_template_id)
    services.send_test(current_org, template, current_user, _samples())
    db.session.commit()
    flash(
        f"Test of version {template.current_version.number} sent to {current_user.email}.",
        "success",
    )
    return redirect(url_for("templates_editor.edit", email_template_id=template.id))
