"""Job and candidate forms."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

RESERVED = {
    "title",
    "department",
    "location",
    "interview_format",
    "duration_minutes",
    "hiring_manager",
}


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
    custom_text = TextAreaField("Custom fields", [Optional(), Length(max=5000)])

    def custom_fields(self) -> dict[str, str] | None:
        """'name: value' lines as a dict (names usable as job.<name>); None when a line is bad."""
        fields: dict[str, str] = {}
        for line in (self.custom_text.data or "").splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            key = re.sub(r"[^a-z0-9_]", "_", name.strip().lower()).strip("_")
            if not sep or not key or key in RESERVED:
                return None
            fields[key[:40]] = value.strip()[:500]
        return fields


class UploadForm(FlaskForm):
    file = FileField("CSV file")


MAX_TAG_LENGTH, MAX_TAGS = 40, 20


class TagsForm(FlaskForm):
    tags = StringField("Tags", [Optional()])

    def validate_tags(self, field: StringField) -> None:
        """Each tag at most MAX_TAG_LENGTH characters, at most MAX_TAGS: refused whole with
        what to change (never cut down quietly)."""
        tags = self.cleaned()
        long = [t for t in tags if len(t) > MAX_TAG_LENGTH]
        if long:
            raise ValidationError(
                f"Tags can be at most {MAX_TAG_LENGTH} characters; "
                f"“{long[0][:MAX_TAG_LENGTH]}…” is {len(long[0])}."
            )
        if len(tags) > MAX_TAGS:
            raise ValidationError(f"At most {MAX_TAGS} tags per candidate ({len(tags)} given).")

    def cleaned(self) -> list[str]:
        """The distinct tags typed, sorted."""
        return sorted({t.strip() for t in (self.tags.data or "").split(",") if t.strip()})
