"""Auth routes: thin wrappers that parse forms, call services and render."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError

from app import limits, sessions
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
        return url_for("messages.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("messages.home")
    return target


def client_ip() -> str:
    """The client's address (ProxyFix has resolved TRUSTED_PROXY_COUNT proxies by now)."""
    return request.remote_addr or "unknown"


def start_session(user: User, org_id: int | None = None) -> None:
    """A new server-side session for `user` in a fresh cookie (no fixation). Commits."""
    session.clear()
    sessions.begin(user, request.user_agent.string)
    memberships = services.memberships_of(user)
    db.session.commit()
    login_user(user)
    if org_id is None and memberships:
        org_id = memberships[0].org_id
    session["org_id"] = org_id


def blocked(
    template: str, form: FlaskForm, refusal: ratelimit.TooManyAttempts, **context: Any
) -> tuple[str, int, dict[str, str]]:
    """The form again, saying how long to wait: 429 with Retry-After."""
    page = render_template(template, form=form, blocked=refusal.message(), **context)
    return page, 429, {"Retry-After": str(refusal.retry_after)}


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
            db.session.rollback()
            form.email.errors.append(str(exc))
        else:
            db.session.commit()
            start_session(user)
            flash(f"Welcome to Herald, {user.name}! Your organization is ready.", "success")
            return redirect(url_for("messages.home"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Log in; failed passwords are limited per (account, IP), per account and per IP."""
    if current_user.is_authenticated:
        return redirect(url_for("messages.home"))
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("auth/login.html", form=form), status
    email = form.email.data.strip().lower()
    try:
        counted = ratelimit.attempt(email, client_ip())
    except ratelimit.TooManyAttempts as refusal:
        return blocked("auth/login.html", form, refusal)
    user = services.authenticate(email, form.password.data)
    if user is None:
        form.password.errors.append("That email and password don't match an account.")
        return render_template("auth/login.html", form=form), 401
    ratelimit.succeeded(counted)
    start_session(user)  # commits, a rehashed password with it
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """End this session on the server: a copy of its cookie is worthless from now on."""
    sessions.end(current_user.session_id)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/forgot", methods=["GET", "POST"])
def forgot() -> ResponseReturnValue:
    """Ask for a password reset link (the answer never says whether the account exists)."""
    form = ForgotForm()
    if form.validate_on_submit():
        limits.hit(
            "password-reset",
            client_ip(),
            current_app.config["PASSWORD_RESET_LIMIT_PER_IP"],
            current_app.config["PASSWORD_RESET_LIMIT_WINDOW_SECONDS"],
            "Too many reset requests from your network. Try again in a few minutes.",
        )
        services.request_password_reset(form.email.data.strip().lower())
        db.session.commit()
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
        services.set_password(user, form.password.data)  # ends every session, this one too
        ratelimit.forgive(user.email, client_ip())
        start_session(user)
        flash("Your password is changed. All other sessions were logged out.", "success")
        return redirect(url_for("messages.home"))
    return render_template("auth/reset.html", form=form), 400 if request.method == "POST" else 200


@bp.get("/verify/<token>")
def verify(token: str) -> ResponseReturnValue:
    """Confirm an email address."""
    try:
        services.verify_email(token)
    except AccountError as exc:
        return render_template("auth/link_problem.html", message=str(exc)), 400
    db.session.commit()
    flash("Thanks, your email address is confirmed.", "success")
    return redirect(url_for("messages.home"))


@bp.post("/verify/resend")
@login_required
def resend_verification() -> ResponseReturnValue:
    """Send the confirmation mail again."""
    from app.tenancy import current_org

    if current_user.email_verified_at is None and current_org:
        services.send_verification(current_user, current_org)
        db.session.commit()
        flash("We sent the confirmation email again.", "info")
    return redirect(url_for("messages.home"))


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
                db.session.commit()
        except ratelimit.TooManyAttempts as refusal:
            return blocked("auth/join.html", form, refusal, invite=team_invite, existing=existing)
        except (team.InviteUnusable, IntegrityError):
            db.session.rollback()
            message = "This invitation was already used. Log in to continue."
            return render_template("auth/link_problem.html", message=message), 410
        if user is not None:
            start_session(user, team_invite.org_id)
            flash(f"You joined {team_invite.org.name}.", "success")
            return redirect(url_for("messages.home"))
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
    counted = ratelimit.attempt(existing.email, client_ip())
    user = services.authenticate(existing.email, form.password.data)
    if user is None:
        form.password.errors.append("That password doesn't match your Herald account.")
    else:
        ratelimit.succeeded(counted)
    return user
