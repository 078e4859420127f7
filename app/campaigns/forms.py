"""Campaign forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional


class CampaignForm(FlaskForm):
    name = StringField("Campaign name", [InputRequired("Name the campaign."), Length(max=200)])
    job_id = SelectField("Job", coerce=int, validate_choice=False)
    template_id = SelectField("Template", coerce=int, validate_choice=False)
    tag = SelectField("Candidates with tag", validate_choice=False)
    q = StringField("…and matching", [Optional(), Length(max=100)])
    ids = HiddenField()  # a hand-picked selection from the candidates list
    respond_by = DateTimeLocalField("Respond by", [Optional()], format="%Y-%m-%dT%H:%M")
    scheduling = RadioField(
        "Interview time",
        choices=[
            SelectChoice("fixed", "One time for everyone"),
            SelectChoice("slots", "Candidates pick a slot"),
            SelectChoice("none", "No interview time yet"),
        ],
        validators=[Optional()],
        validate_choice=False,
    )
    slot_starts_at = DateTimeLocalField(
        "Interview time (optional)", [Optional()], format="%Y-%m-%dT%H:%M"
    )
    location = StringField("Interview location or video link", [Optional(), Length(max=300)])
    tracking = BooleanField("Track opens and clicks", default=True)


class LaunchForm(FlaskForm):
    mode = SelectField(
        "When",
        choices=[SelectChoice("now", "Send now"), SelectChoice("later", "Schedule")],
        validate_choice=False,
    )
    at = DateTimeLocalField("Send at", [Optional()], format="%Y-%m-%dT%H:%M")
