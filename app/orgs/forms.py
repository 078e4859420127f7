"""Organization forms."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, Length

TIMEZONES = sorted(available_timezones() - {"localtime", "Factory"})


class OrgForm(FlaskForm):
    name = StringField(
        "Organization name", [InputRequired("Name your organization."), Length(max=120)]
    )
    timezone = SelectField("Default time zone", choices=TIMEZONES, default="UTC")


class SwitchForm(FlaskForm):
    org_id = IntegerField("Organization", [InputRequired()])
