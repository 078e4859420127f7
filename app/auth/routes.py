"""Auth routes: thin wrappers that parse forms, call services and render."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from app.auth import bp, ratelimit, services
from app.auth.forms import (
    ForgotForm,
    JoinExistingForm,
    JoinForm,
    LoginForm,
    NewPasswordForm,
    SignupForm,
)
from app.auth.services import AccountError
from app.extensions import db
from app.models import User
from app.team import services as team


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: no open redirect through ?next= (nor control characters)."""
    if not target or any(ord(c) <= 0x20 or c == "\\" for c in target):
        return url_for("main.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("main.home")
    return target


def _start_session(user: User, org_id: int | None = None) -> None:
    session.clear()
    login_user(user)
    memberships = services.memberships_of(user)
    if org_id is None and memberships:
        org_id = memberships[0].org_id
    session["org_id"] = org_id


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    """Create an organization and its owner."""
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = services.sign_up(
                form.org_name.data, form.name.data, form.email.data, form.password.data
            )
        except AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            _start_session(user)
            flash(f"Welcome to Herald, {user.name}! Your organization is ready.", "success")
            return redirect(url_for("main.home"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Log in, rate-limited per IP and per account."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if request.method == "POST":
        try:
            ratelimit.check_and_count_ip(request.remote_addr or "unknown")
            if form.validate_on_submit():
                email = form.email.data.strip().lower()
                ratelimit.count_account_attempt(email)
                user = services.authenticate(email, form.password.data)
                if user is not None:
                    ratelimit.clear_failures(email)
                    _start_session(user)
                    return redirect(_safe_next(request.args.get("next")))
                form.password.errors.append("That email and password don't match an account.")
                return render_template("auth/login.html", form=form), 401
        except ratelimit.TooManyAttempts as exc:
            minutes = max(1, round(exc.retry_after / 60))
            message = (
                f"Too many failed attempts for this account. Try again in {minutes} minute(s), "
                "or reset your password."
                if exc.scope == "account"
                else f"Too many login attempts from your network. Try again in {minutes} minute(s)."
            )
            response = render_template("auth/login.html", form=form, blocked=message)
            return response, 429, {"Retry-After": str(exc.retry_after)}
        return render_template("auth/login.html", form=form), 400
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """End the session."""
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/forgot", methods=["GET", "POST"])
def forgot() -> ResponseReturnValue:
    """Ask for a password reset link (the answer never says whether the account exists)."""
    form = ForgotForm()
    if form.validate_on_submit():
        ratelimit_key = request.remote_addr or "unknown"
        try:
            ratelimit.check_and_count_ip(ratelimit_key)
        except ratelimit.TooManyAttempts:
            abort(429, description="Too many requests. Try again in a few minutes.")
        services.request_password_reset(form.email.data.strip().lower())
        flash(
            "If that address has an account, a reset link is on its way. It works for one hour.",
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> ResponseReturnValue:
    """Set a new password through a signed, one-hour, single-use link."""
    try:
        user = services.user_for_reset(token)
    except AccountError as exc:
        return render_template("auth/link_problem.html", message=str(exc)), 400
    form = NewPasswordForm()
    if form.validate_on_submit():
        services.set_password(user, form.password.data)
        ratelimit.clear_failures(user.email)
        _start_session(user)
        flash("Your password is changed. Other sessions were logged out.", "success")
        return redirect(url_for("main.home"))
    return render_template("auth/reset.html", form=form), 400 if request.method == "POST" else 200


@bp.get("/verify/<token>")
def verify(token: str) -> ResponseReturnValue:
    """Confirm an email address."""
    try:
        services.verify_email(token)
    except AccountError as exc:
        return render_template("auth/link_problem.html", message=str(exc)), 400
    flash("Thanks, your email address is confirmed.", "success")
    return redirect(url_for("main.home"))


@bp.post("/verify/resend")
@login_required
def resend_verification() -> ResponseReturnValue:
    """Send the confirmation mail again."""
    from app.tenancy import current_org

    if current_user.email_verified_at is None and current_org:
        services.send_verification(current_user, current_org)
        db.session.commit()
        flash("We sent the confirmation email again.", "info")
    return redirect(url_for("main.home"))


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str) -> ResponseReturnValue:
    """Accept a teammate invite: new people set a password, existing users confirm theirs."""
    try:
        team_invite = team.resolve_invite(token)
    except team.InviteUnusable as exc:
        return render_template("auth/link_problem.html", message=str(exc)), 410 if exc.gone else 404
    existing = services.find_user(team_invite.email)
    form = JoinExistingForm() if existing else JoinForm()
    if form.validate_on_submit():
        try:
            user = _joining_user(existing, team_invite.email, form)
            if user is not None:
                team.accept(team_invite, user)
        except ratelimit.TooManyAttempts:
            abort(429, description="Too many password attempts. Try again later.")
        except (team.InviteUnusable, IntegrityError):
            db.session.rollback()
            message = "This invitation was already used. Log in to continue."
            return render_template("auth/link_problem.html", message=message), 410
        if user is not None:
            _start_session(user, team_invite.org_id)
            flash(f"You joined {team_invite.org.name}.", "success")
            return redirect(url_for("main.home"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "auth/join.html", form=form, invite=team_invite, existing=existing
    ), status


def _joining_user(
    existing: User | None, email: str, form: JoinForm | JoinExistingForm
) -> User | None:
    """A new account for the invited address, or the existing one if its password matches."""
    if existing is None:
        user = User(
            email=email,
            name=form.name.data.strip(),
            password_hash=services.hash_password(form.password.data),
        )
        db.session.add(user)
        db.session.flush()
        return user
    ratelimit.count_account_attempt(existing.email)
    user = services.authenticate(existing.email, form.password.data)
    if user is None:
        form.password.errors.append("That password doesn't match your Herald account.")
    else:
        ratelimit.clear_failures(existing.email)
    return user
