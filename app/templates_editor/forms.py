"""Template editor forms. Content checks (syntax, variables, sizes) live in services.validate, so
the editor can show them inline with line and column."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length

from app.models import TemplateKind

KIND_CHOICES = [SelectChoice(k.value, k.label) for k in TemplateKind]


_NAME_LONG = "A name can be at most 120 characters."


class NewTemplateForm(FlaskForm):
    name = StringField(
        "Name", [InputRequired("Give the template a name."), Length(max=120, message=_NAME_LONG)]
    )
    kind = SelectField("Kind", choices=KIND_CHOICES, default=TemplateKind.INVITATION.value)


class TemplateForm(FlaskForm):
    name = StringField("Name", [Length(max=120, message=_NAME_LONG)])
    subject = StringField("Subject")
    html = TextAreaField("HTML body")
    text = TextAreaField("Plain-text body (optional)")


class RestoreForm(FlaskForm):
    number = IntegerField("Version", [InputRequired()])
