"""Schedule forms: generate slots from weekly windows, or add one slot; both set capacity,
location or video link and interviewers (teammates, or outside names and emails)."""

from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.schedule.services import Outsider, ScheduleError
from app.schedule.windows import DAY_NAMES, Window

WINDOW_ROWS = 3
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2199, 12, 31)


def sensible_day(form: Form, field: DateField) -> None:
    """A day Herald can turn into UTC in any zone (year 1 or 9999 overflows, and is a typo)."""
    if field.data is not None and not EARLIEST_DAY <= field.data <= LATEST_DAY:
        raise ValidationError(f"Pick a day between {EARLIEST_DAY:%Y} and {LATEST_DAY:%Y}.")


class CheckboxesField(SelectMultipleField):
    """Checkboxes, one per choice (weekdays, teammates)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class WindowForm(Form):
    """One weekly window: some days, from one time to a later one (org's zone)."""

    days = CheckboxesField(
        "Days",
        coerce=int,
        choices=[SelectChoice(i, name) for i, name in enumerate(DAY_NAMES)],
        validate_choice=False,
    )
    start = TimeField("From", [Optional()])
    end = TimeField("To", [Optional()])

    def window(self) -> Window | None:
        """The window, None for an empty row; a half-filled row is refused."""
        if not self.days.data and self.start.data is None and self.end.data is None:
            return None
        if not self.days.data or self.start.data is None or self.end.data is None:
            raise ScheduleError("Give each window its days, a start and an end time.")
        if not set(self.days.data) <= set(range(7)):
            raise ScheduleError("Pick days of the week from the list.")
        return Window(frozenset(self.days.data), self.start.data, self.end.data)


class SlotFieldsMixin:
    """What every slot of one add or generation shares."""

    capacity = IntegerField(
        "Places per slot",
        [
            InputRequired("Say how many candidates a slot takes."),
            NumberRange(min=1, max=500, message="A slot takes between 1 and 500 candidates."),
        ],
        default=1,
    )
    location = StringField("Location or video link", [Optional(), Length(max=300)])
    teammates = CheckboxesField("Interviewers from your team", coerce=int, validate_choice=False)
    outsiders = TextAreaField("Interviewers outside Herald", [Optional(), Length(max=4000)])

    def outsider_list(self) -> tuple[Outsider, ...]:
        """'Name, email' per line."""
        people = []
        for line in (self.outsiders.data or "").splitlines():
            if not line.strip():
                continue
            name, sep, email = line.rpartition(",")
            if not sep:
                raise ScheduleError(f"Write outside interviewers as 'Name, email': {line!r}.")
            people.append(Outsider(name.strip(), email.strip()))
        if len(people) > 20:
            raise ScheduleError("At most 20 outside interviewers per slot.")
        return tuple(people)


class GenerateForm(SlotFieldsMixin, FlaskForm):
    windows = FieldList(FormField(WindowForm), min_entries=WINDOW_ROWS, max_entries=WINDOW_ROWS)
    first_day = DateField("First day", [InputRequired("Pick the first day."), sensible_day])
    last_day = DateField("Last day", [InputRequired("Pick the last day."), sensible_day])
    duration = IntegerField(
        "Minutes per slot",
        [
            InputRequired("Say how long a slot lasts."),
            NumberRange(min=5, max=480, message="A slot lasts between 5 and 480 minutes."),
        ],
        default=45,
    )
    buffer = IntegerField(
        "Minutes between slots",
        [Optional(), NumberRange(min=0, max=240, message="The gap is 0 to 240 minutes.")],
        default=15,
    )


class AddSlotForm(SlotFieldsMixin, FlaskForm):
    day = DateField("Day", [InputRequired("Pick the day."), sensible_day])
    start = TimeField("Starts", [InputRequired("Pick the start time.")])
    end = TimeField("Ends", [InputRequired("Pick the end time.")])
