"""The follow-up after the interview: which template, how many hours after."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange

from app.results.services import MAX_FOLLOW_UP_HOURS


class FollowUpForm(FlaskForm):
    template_id = SelectField("Follow-up email", coerce=str, validate_choice=False)
    hours = IntegerField(
        "Hours after the interview",
        [
            InputRequired("Say how many hours after the interview."),
            NumberRange(1, MAX_FOLLOW_UP_HOURS, f"Between 1 and {MAX_FOLLOW_UP_HOURS} hours."),
        ],
        default=24,
    )
