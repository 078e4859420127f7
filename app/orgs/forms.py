"""Organization forms."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup
from wtforms import (
    BooleanField,
    Field,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget, TextInput

from app.invitations.business_hours import DAY_NAMES

ZONE_TAB = Path("/usr/share/zoneinfo/zone.tab")


def _offered_zones() -> list[str]:
    """The zones to choose from: one per place (the system's zone.tab: Europe/Amsterdam, no
    legacy aliases such as America/Atka or US/Eastern) and UTC; every zone Python knows when
    that file is missing."""
    known = available_timezones()
    try:
        lines = ZONE_TAB.read_text().splitlines()
    except OSError:
        return sorted(known - {"localtime", "Factory"})
    places = {line.split("\t")[2] for line in lines if line and not line.startswith("#")}
    return sorted((places & known) | {"UTC"})


TIMEZONES = _offered_zones()


class ZoneInput(TextInput):
    """A text input whose suggestions are the zones (a <datalist>): typing part of a name, such
    as a city, finds it among some 420, and assistive tech reads it as a combobox."""

    def __call__(self, field: Field, **kwargs: object) -> Markup:
        kwargs.setdefault("list", f"{field.id}-zones")
        kwargs.setdefault("autocomplete", "off")
        kwargs.setdefault("spellcheck", "false")
        options = Markup("").join(Markup('<option value="{}">').format(z) for z in TIMEZONES)
        datalist = Markup('<datalist id="{}-zones">{}</datalist>').format(field.id, options)
        return super().__call__(field, **kwargs) + datalist


def find_zone(typed: str | None, zones: list[str]) -> str:
    """The zone meant by what was typed: its exact name (any case), or the one zone whose name
    contains it (Paris, new york); ValidationError saying why otherwise."""
    wanted = "_".join((typed or "").split()).casefold()
    found = [z for z in zones if z.casefold() == wanted] or [
        z for z in zones if wanted and wanted in z.casefold()
    ]
    if len(found) == 1:
        return found[0]
    if found:
        some = ", ".join(found[:3])
        raise ValidationError(f"“{typed}” fits {len(found)} time zones ({some}…): pick one.")
    raise ValidationError(f"“{typed}” is not a time zone. Type a city, like Paris, and pick one.")


class OrgForm(FlaskForm):
    name = StringField(
        "Organization name", [InputRequired("Name your organization."), Length(max=120)]
    )
    timezone = StringField(
        "Default time zone",
        [InputRequired("Pick a time zone."), Length(max=64)],
        default="UTC",
        widget=ZoneInput(),
    )
    zones = TIMEZONES

    def keep_zone(self, current: str | None) -> None:
        """An org already on a zone the list leaves out (an alias chosen before) keeps it."""
        if current and current not in TIMEZONES and current in available_timezones():
            self.zones = sorted([*TIMEZONES, current])

    def validate_timezone(self, field: StringField) -> None:
        """Only a zone from the list (or the org's own), whatever the browser let through."""
        field.data = find_zone(field.data, self.zones)


class SendingForm(FlaskForm):
    send_rate_per_minute = IntegerField(
        "Emails per minute", [InputRequired(), NumberRange(1, 100_000)]
    )
    invitation_ttl_days = IntegerField(
        "Invitation links last (days)", [InputRequired(), NumberRange(1, 90)]
    )
    candidate_daily_cap = IntegerField(
        "Bulk emails per candidate per day", [InputRequired(), NumberRange(1, 50)]
    )
    tracking_enabled = BooleanField("Track opens and clicks in candidate mail")
    soft_bounce_threshold = IntegerField(
        "Soft bounces before an address is suppressed", [InputRequired(), NumberRange(1, 50)]
    )
    soft_bounce_days = IntegerField("…within this many days", [InputRequired(), NumberRange(1, 90)])
    max_retries = IntegerField(
        "Retries before an email fails", [InputRequired(), NumberRange(0, 10)]
    )
    event_retention_days = SelectField(
        "Keep each email's events (timeline, opens, clicks) for",
        choices=[
            SelectChoice(30, "30 days"),
            SelectChoice(90, "90 days"),
            SelectChoice(180, "6 months"),
            SelectChoice(365, "1 year"),
            SelectChoice(730, "2 years"),
            SelectChoice(0, "As long as the email is kept"),
        ],
        coerce=int,
        default=365,
    )


class RemindersForm(FlaskForm):
    hours = StringField("Remind this many hours before the interview or deadline", [Length(max=60)])
    business_hours = BooleanField("Keep reminders to business hours, in the candidate's time zone")
    days = SelectMultipleField(
        "Business days",
        choices=[SelectChoice(i, name) for i, name in enumerate(DAY_NAMES)],
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    opens = StringField("Open from", [Length(max=5)])
    closes = StringField("until", [Length(max=5)])

    def validate_days(self, field: SelectMultipleField) -> None:
        if self.business_hours.data and not field.data:
            raise ValidationError("Choose at least one business day.")

    def validate_closes(self, field: StringField) -> None:
        opens, closes = minutes_of(self.opens.data), minutes_of(field.data)
        if opens is None or closes is None:
            raise ValidationError("Use times like 09:00 and 17:00.")
        if opens >= closes:
            raise ValidationError("Business hours end after they start (on the same day).")


def minutes_of(text: str | None) -> int | None:
    """Minutes after midnight from "09:00" (or "9:00"; "24:00" is the end of the day)."""
    hours, _, minutes = (text or "").strip().partition(":")
    if not (f"{hours}{minutes}".isascii() and hours.isdigit() and minutes.isdigit()):
        return None
    if len(minutes) != 2 or len(hours) > 2:
        return None
    total = int(hours) * 60 + int(minutes)
    return total if int(minutes) < 60 and total <= 1440 else None


class SwitchForm(FlaskForm):
    org_id = IntegerField("Organization", [InputRequired()])


class BrandingForm(FlaskForm):
    logo = FileField("Logo")
    remove_logo = BooleanField("Remove the current logo")
    primary_color = StringField("Primary colour", [InputRequired()])
    accent_color = StringField("Accent colour", [InputRequired()])
    sender_name = StringField("Sender name", [Length(max=120)])
    sender_email = StringField("Sender address", [Length(max=254)])
    reply_to = StringField("Reply-to address", [Length(max=254)])
    footer_text = TextAreaField("Footer text", [Length(max=500)])
    postal_address = TextAreaField("Postal address", [Length(max=300)])
