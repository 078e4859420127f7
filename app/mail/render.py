"""Render Herald's built-in system mails (test email, invites, resets) in the same bounded sandbox
as authored templates. The UI's own Jinja environment (Flask's) never renders email."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, select_autoescape

from app.mail.sandbox import (
    TemplateProblem,
    compile_source,
    make_env,
    message_budget,
    render_bounded,
)

EMAIL_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"

# Built-in system mails: subject line and the template files (.html and .txt) they use.
BUILTIN_SUBJECTS = {
    "test_email": "Herald test email for {{ org.name }}",
    "team_invite": "{{ inviter.name }} invited you to {{ org.name }} on Herald",
    "password_reset": "Reset your Herald password",
    "verify_email": "Confirm your email address for Herald",
    "candidate_response": "{{ candidate.name }} {{ answer }} the {{ job.title }} interview",
    "booking_confirmation": "Your {{ job.title }} interview: {{ interview.when }}",
    "booking_rescheduled": "Moved: your {{ job.title }} interview is now {{ interview.when }}",
    "booking_cancelled": "Cancelled: your {{ job.title }} interview on {{ interview.when }}",
    "interview_confirmed": "Confirmed: your {{ job.title }} interview, {{ interview.when }}",
    "interview_removed": "Off your calendar: {{ job.title }} interview, {{ interview.when }}",
    "no_slot_fits": "{{ candidate.name }} found no interview time that fits ({{ job.title }})",
    "interviewer_invite": "{{ title }}: {{ candidate.name }}, {{ interview.when }}",
    "slot_cancelled": "Please pick another time: your {{ job.title }} interview was cancelled",
}


class RenderError(TemplateProblem):
    """A built-in template could not be rendered."""


@dataclass(frozen=True)
class Rendered:
    """What a message says: subject, HTML and text parts."""

    subject: str
    html: str
    text: str


# .html files autoescape; .txt files and subjects are plain text.
_env = make_env(FileSystemLoader(str(EMAIL_TEMPLATES)), autoescape=select_autoescape(["html"]))
_subject_env = make_env(autoescape=False)


def builtin_subject(key: str, context: dict[str, Any]) -> str | None:
    """The subject a built-in mail will have (shown while it waits); None if it cannot be
    rendered now (its send says why)."""
    if key not in BUILTIN_SUBJECTS:
        return None
    try:
        return _subject(key, context)
    except TemplateProblem:
        return None


def _subject(key: str, context: dict[str, Any]) -> str:
    subject = render_bounded(_compiled_subject(key), context)
    return " ".join(subject.split())[:200]


@functools.cache
def _compiled_subject(key: str) -> Any:
    """Each built-in subject compiled once (≈1 ms each time otherwise, in the request that
    queues the mail: a booking's confirmation, say)."""
    return compile_source(_subject_env, BUILTIN_SUBJECTS[key])


def render_builtin(key: str, context: dict[str, Any]) -> Rendered:
    """Render one of Herald's built-in system mails with plain-dict context."""
    if key not in BUILTIN_SUBJECTS:
        raise RenderError(f"There is no built-in email template called {key!r}.")
    with message_budget():  # one time budget for the three parts
        subject = _subject(key, context)
        html = render_bounded(_env.get_template(f"{key}.html"), context)
        text = render_bounded(_env.get_template(f"{key}.txt"), context)
    return Rendered(subject=subject, html=html, text=text)
