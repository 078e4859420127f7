"""The account menu's own pages: change the password, log out everywhere."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, logout_user

from app import sessions
from app.auth import bp, ratelimit, services
from app.auth.forms import ChangePasswordForm
from app.auth.routes import blocked, client_ip
from app.extensions import db


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> ResponseReturnValue:
    """A new password; this browser stays logged in, every other session of the user ends. The
    current password is checked under the same limits as a login (a stolen cookie alone cannot
    set a password)."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("auth/password.html", form=form), status
    try:
        counted = ratelimit.attempt(current_user.email, client_ip())
    except ratelimit.TooManyAttempts as refusal:
        return blocked("auth/password.html", form, refusal)
    if services.authenticate(current_user.email, form.current.data) is None:
        form.current.errors.append("That is not your current password.")
        return render_template("auth/password.html", form=form), 400
    ratelimit.succeeded(counted)
    services.set_password(current_user, form.password.data, keep_session=current_user.session_id)
    db.session.commit()
    flash("Your password is changed. Your other sessions were logged out.", "success")
    return redirect(url_for("messages.home"))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """End every session of this user, on every device, this one included."""
    sessions.end_all(current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are logged out on every device.", "info")
    return redirect(url_for("auth.login"))
