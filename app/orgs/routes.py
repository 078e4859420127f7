"""Organization routes."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from app.auth.services import create_org
from app.extensions import db
from app.models import Role
from app.orgs import bp
from app.orgs.forms import OrgForm, SwitchForm
from app.team.services import audit
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
        return redirect(url_for("main.home"))
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
    return redirect(url_for("main.home"))


@bp.route("/settings", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def settings() -> ResponseReturnValue:
    """Organization settings (admins and owners)."""
    form = OrgForm(obj=current_org)
    if form.validate_on_submit():
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
    return render_template(
        "orgs/settings.html", form=form
    ), 400 if request.method == "POST" else 200
