"""Job and candidate forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional


class JobForm(FlaskForm):
    title = StringField("Title", [InputRequired("Give the position a title."), Length(max=200)])
    department = StringField("Department", [Optional(), Length(max=120)])
    location = StringField("Location", [Optional(), Length(max=200)])
    interview_format = StringField(
        "Interview format", [InputRequired(), Length(max=80)], default="Video call"
    )
    duration_minutes = IntegerField(
        "Interview length (minutes)", [InputRequired(), NumberRange(5, 600)], default=45
    )
    hiring_manager = StringField("Hiring manager", [Optional(), Length(max=120)])


class UploadForm(FlaskForm):
    file = FileField("CSV file")


class TagsForm(FlaskForm):
    tags = StringField("Tags", [Optional(), Length(max=500)])
