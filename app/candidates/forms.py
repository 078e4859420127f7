"""Job and candidate forms."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from app.candidates.importer import field_name, normalised_email
from app.orgs.forms import TIMEZONES

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


MAX_CUSTOM_FIELDS, MAX_FIELD_NAME, MAX_FIELD_VALUE = 20, 40, 1000
BLANK_ROWS = 3  # empty name/value rows offered under the filled ones


class CustomFieldForm(Form):
    """One custom field row (name and value); a row with both empty is ignored."""

    name = StringField("Field name", [Optional(), Length(max=MAX_FIELD_NAME)])
    value = StringField("Value", [Optional(), Length(max=MAX_FIELD_VALUE)])


class CandidateForm(FlaskForm):
    """Add or edit one candidate; the same rules as the CSV import (email, time zone)."""

    email = StringField("Email", [InputRequired("Give the candidate's email address.")])
    first_name = StringField("First name", [Optional(), Length(max=120)])
    last_name = StringField("Last name", [Optional(), Length(max=120)])
    phone = StringField("Phone", [Optional(), Length(max=40)])
    timezone = SelectField("Time zone", choices=[])
    custom = FieldList(FormField(CustomFieldForm), max_entries=MAX_CUSTOM_FIELDS + BLANK_ROWS)

    def __init__(self, *args: object, zone: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        zones = sorted({*TIMEZONES, zone}) if zone else TIMEZONES  # an imported alias stays
        self.timezone.choices = [SelectChoice("", "The organization's time zone"), *zones]

    def offer_rows(self) -> None:
        """Blank rows under the filled ones, up to the limit, to add fields without script."""
        while len(self.custom.entries) < min(
            MAX_CUSTOM_FIELDS, len(self.fields_typed()) + BLANK_ROWS
        ):
            self.custom.append_entry()

    def validate_email(self, field: StringField) -> None:
        try:
            field.data = normalised_email((field.data or "").strip())
        except EmailNotValidError as exc:
            raise ValidationError(f"Invalid email address: {exc}") from exc

    def fields_typed(self) -> list[tuple[str, str]]:
        """(name, value) of the rows that say something."""
        rows = [(e.form.name.data or "", e.form.value.data or "") for e in self.custom.entries]
        return [(n.strip(), v.strip()) for n, v in rows if n.strip() or v.strip()]

    def validate_custom(self, field: FieldList) -> None:
        """At most MAX_CUSTOM_FIELDS, each named, names distinct once made template-ready."""
        typed = self.fields_typed()
        if len(typed) > MAX_CUSTOM_FIELDS:
            raise ValidationError(
                f"At most {MAX_CUSTOM_FIELDS} custom fields ({len(typed)} given)."
            )
        names = [field_name(n) for n, _ in typed if n]
        if len(names) < len(typed):
            raise ValidationError("Each custom field needs a name (or clear its value).")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValidationError(f"Two fields would both be called “{twice[0]}”; rename one.")

    def custom_fields(self) -> dict[str, str]:
        """The custom fields as stored: template-ready names → values."""
        return {field_name(n): v for n, v in self.fields_typed()}
