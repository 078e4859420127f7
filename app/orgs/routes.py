"""Organization routes."""

from __future__ import annotations

from dataclasses import replace

from flask import abort, flash, redirect, render_template, request, send_file, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from app.audit import audit
from app.auth.services import create_org
from app.extensions import db
from app.mail.compose import brand_for, render_authored
from app.mail.sandbox import TemplateProblem
from app.models import Role, TemplateKind, default_template
from app.orgs import bp
from app.orgs import branding as branding_rules
from app.orgs.forms import BrandingForm, OrgForm, RemindersForm, SendingForm, SwitchForm
from app.security import PREVIEW_CSP
from app.templates_editor.defaults import DEFAULTS
from app.templates_editor.services import preview_context
from app.tenancy import current_org, role_required, user_memberships


@bp.route("/orgs/new", methods=["GET", "POST"])
@login_required
def new() -> ResponseReturnValue:
    """Create another organization; you become its owner."""
    form = OrgForm()
    if form.validate_on_submit():
        org = create_org(form.name.data, current_user, form.timezone.data)
        db.session.commit()
        session["org_id"] = org.id
        flash(f"{org.name} is ready. You are its owner.", "success")
        return redirect(url_for("messages.home"))
    return render_template("orgs/new.html", form=form), 400 if request.method == "POST" else 200


@bp.post("/orgs/switch")
@login_required
def switch() -> ResponseReturnValue:
    """Make another of your organizations the current one."""
    form = SwitchForm()
    if not form.validate_on_submit():
        abort(400, description="Choose an organization.")
    membership = next((m for m in user_memberships() if m.org_id == form.org_id.data), None)
    if membership is None:
        abort(404)
    session["org_id"] = membership.org_id
    flash(f"Switched to {membership.org.name}.", "info")
    return redirect(url_for("messages.home"))


@bp.route("/settings", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def settings() -> ResponseReturnValue:
    """Organization settings (admins and owners)."""
    form = OrgForm(obj=current_org)
    form.keep_zone(current_org.timezone)
    sending = SendingForm(obj=current_org, prefix="s")
    hours = ", ".join(
        str(round(m / 60, 2)).removesuffix(".0") for m in current_org.reminder_offsets
    )
    reminders = RemindersForm(
        prefix="r", data={"hours": hours, "business_hours": current_org.reminders_business_hours}
    )
    # every section is checked, so that each bad field is marked at once
    valid = request.method == "POST" and all(
        [form.validate_on_submit(), sending.validate(), reminders.validate()]
    )
    if request.method == "POST":
        offsets = _reminder_offsets(reminders.hours.data)
        if offsets is None:
            bad = "Use hours like “24, 2” (up to 720)."
            reminders.hours.errors = [*reminders.hours.errors, bad]
            valid = False
        keep, counted = sending.event_retention_days.data, sending.soft_bounce_days.data
        if keep and isinstance(counted, int) and keep < counted:
            sending.event_retention_days.errors = [
                *sending.event_retention_days.errors,
                f"Keep events at least as long as soft bounces are counted ({counted} days).",
            ]
            valid = False
    if valid:
        current_org.reminder_offsets = offsets
        current_org.reminders_business_hours = bool(reminders.business_hours.data)
        current_org.tracking_enabled = bool(sending.tracking_enabled.data)
        for key in (
            "send_rate_per_minute",
            "invitation_ttl_days",
            "candidate_daily_cap",
            "max_retries",
            "soft_bounce_threshold",
            "soft_bounce_days",
        ):
            setattr(current_org, key, getattr(sending, key).data)
        if sending.event_retention_days.data != current_org.event_retention_days:
            audit(
                current_org.id,
                current_user,
                "settings.retention_changed",
                days=sending.event_retention_days.data,
                was=current_org.event_retention_days,
            )
            current_org.event_retention_days = sending.event_retention_days.data
        changes = {
            k: getattr(form, k).data
            for k in ("name", "timezone")
            if getattr(form, k).data != getattr(current_org, k)
        }
        for key, value in changes.items():
            setattr(current_org, key, value)
        if changes:
            audit(current_org.id, current_user, "settings.changed", fields=sorted(changes))
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("orgs.settings"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "orgs/settings.html", form=form, sending=sending, reminders=reminders
    ), status


def _reminder_offsets(text: str | None) -> list[int] | None:
    """Minutes before the interview from "24, 2" (hours; up to 720), or None if unreadable."""
    try:
        offsets = sorted(
            {
                int(round(float(h) * 60))
                for h in (text or "").replace(";", ",").split(",")
                if h.strip()
            },
            reverse=True,
        )
    except (ValueError, OverflowError):  # "banana", "nan", "inf"
        return None
    if any(m <= 0 or m > 60 * 24 * 30 for m in offsets):
        return None
    return offsets


@bp.route("/settings/branding", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def branding() -> ResponseReturnValue:
    """Logo, colours, sender and footer used by every template (admins)."""
    form = BrandingForm(obj=current_org)
    error = None
    valid = form.validate_on_submit()
    if request.method == "POST":
        for name, problem in branding_rules.problems(form.data).items():  # each at its field
            getattr(form, name).errors = [*getattr(form, name).errors, problem]
            valid = False
    if valid:
        upload = request.files.get("logo")
        data = (
            upload.read(branding_rules.MAX_LOGO_BYTES + 1) if upload and upload.filename else None
        )
        try:
            branding_rules.update(
                current_org, current_user, form.data, data, bool(form.remove_logo.data)
            )
        except branding_rules.BrandingError as exc:  # the logo's (read only now)
            db.session.rollback()
            form.logo.errors = [*form.logo.errors, str(exc)]
        else:
            db.session.commit()
            flash("Branding saved. Every template's preview uses it now.", "success")
            return redirect(url_for("orgs.branding"))
    status = 400 if request.method == "POST" else 200
    body = render_template(
        "orgs/branding.html",
        form=form,
        error=error,
        preview=_branding_preview(form),
        logo_shown=branding_rules.LOGO_SHOWN,
    )
    return body, status, {"Content-Security-Policy": PREVIEW_CSP}  # (the preview's styles)


@bp.post("/settings/branding/preview")
@role_required(Role.ADMIN)
def branding_preview() -> ResponseReturnValue:
    """The invitation as it would look with the branding being typed (HTMX; nothing saved)."""
    form = BrandingForm()
    return render_template("orgs/_branding_preview.html", preview=_branding_preview(form))


def _branding_preview(form: BrandingForm) -> str | None:
    """The org's default invitation (or the starter one) rendered with the form's colours,
    footer and address over the saved branding; None if it cannot be rendered."""
    brand = brand_for(current_org)
    changes = {
        name: value
        for name in ("primary_color", "accent_color")
        if branding_rules.COLOR.match(value := (getattr(form, name).data or "").strip())
    }
    for name in ("footer_text", "postal_address"):
        if name in request.form:  # typed (maybe emptied); else the saved one
            changes[name] = (getattr(form, name).data or "").strip()[:500] or None
    if form.remove_logo.data:
        changes["logo_url"] = None
    brand = replace(brand, **changes)
    template = default_template(current_org.id, TemplateKind.INVITATION)
    version = template.current_version if template is not None else None
    _, subject, html = DEFAULTS[TemplateKind.INVITATION]
    text = None
    if version is not None:
        subject, html, text = version.subject, version.html, version.text
    context = preview_context(current_org, current_user, {})
    context["org"] = {**context.get("org", {}), "address": brand.postal_address or ""}
    try:
        rendered = render_authored(
            subject=subject, html=html, text=text, brand=brand, context=context, bulk=True
        )
    except TemplateProblem:
        return None
    return rendered.html


@bp.get("/brand/<logo_key>")
def logo(logo_key: str) -> ResponseReturnValue:
    """A logo, public (emails show it), cached for a year: the key changes with the content."""
    path = branding_rules.logo_path(logo_key) or abort(404)
    response = send_file(
        path, mimetype=branding_rules.TYPES[path.suffix.lstrip(".")], max_age=365 * 24 * 3600
    )
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
