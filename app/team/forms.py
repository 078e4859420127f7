"""Team forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length

from app.models import Role

ROLE_CHOICES = [SelectChoice(r.value, r.label) for r in reversed(Role)]


class InviteForm(FlaskForm):
    email = EmailField(
        "Email address", [InputRequired("Enter their email address."), Length(max=254)]
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.RECRUITER.value)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
