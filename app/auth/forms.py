"""Auth forms (flask-wtf: CSRF included)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, ValidationError

from app.auth.services import MIN_PASSWORD, AccountError, find_user, normalize_email

_password = [
    InputRequired("Choose a password."),
    Length(min=MIN_PASSWORD, max=200, message=f"Use at least {MIN_PASSWORD} characters."),
]


class SignupForm(FlaskForm):
    org_name = StringField(
        "Organization name", [InputRequired("Name your organization."), Length(max=120)]
    )
    name = StringField("Your name", [InputRequired("Tell us your name."), Length(max=120)])
    email = EmailField("Work email", [InputRequired("Enter your email address."), Length(max=254)])
    password = PasswordField("Password", _password)

    def validate_email(self, field: EmailField) -> None:
        """Checked with the other fields, so one submit shows every field's problem."""
        try:
            email = normalize_email(field.data or "")
        except AccountError as exc:
            raise ValidationError(str(exc)) from exc
        if find_user(email):
            raise ValidationError("An account with this email already exists. Log in instead.")


class LoginForm(FlaskForm):
    email = EmailField("Email", [InputRequired("Enter your email address."), Length(max=254)])
    password = PasswordField("Password", [InputRequired("Enter your password."), Length(max=200)])


class ForgotForm(FlaskForm):
    email = EmailField("Email", [InputRequired("Enter your email address."), Length(max=254)])


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", _password)
    confirm = PasswordField("Repeat it", [EqualTo("password", "The two passwords differ.")])


class ChangePasswordForm(FlaskForm):
    """A logged-in user's new password; the current one proves it is them at the keyboard."""

    current = PasswordField(
        "Current password", [InputRequired("Enter your current password."), Length(max=200)]
    )
    password = PasswordField("New password", _password)
    confirm = PasswordField("Repeat it", [EqualTo("password", "The two passwords differ.")])


class JoinForm(FlaskForm):
    """Accept a team invite: a new user picks a name and password."""

    name = StringField("Your name", [InputRequired("Tell us your name."), Length(max=120)])
    password = PasswordField("Password", _password)


class JoinExistingForm(FlaskForm):
    """Accept a team invite with an existing account's password."""

    password = PasswordField("Your Herald password", [InputRequired("Enter your password.")])
