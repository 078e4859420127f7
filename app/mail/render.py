"""Render email templates only in Jinja2's sandbox: autoescape on, strict variables, bounded output.

The UI's own Jinja environment (Flask's) never renders email; this one never renders the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

EMAIL_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"
MAX_OUTPUT_CHARS = 512 * 1024

# Built-in system mails: subject line and the template files (.html and .txt) they use.
BUILTIN_SUBJECTS = {
    "test_email": "Herald test email for {{ org.name }}",
    "team_invite": "{{ inviter.name }} invited you to {{ org.name }} on Herald",
    "password_reset": "Reset your Herald password",
    "verify_email": "Confirm your email address for Herald",
}


class RenderError(Exception):
    """A template could not be rendered; the message says why, for a person to read."""


@dataclass(frozen=True)
class Rendered:
    """What a message says: subject, HTML and text parts."""

    subject: str
    html: str
    text: str


_env = ImmutableSandboxedEnvironment(
    loader=FileSystemLoader(str(EMAIL_TEMPLATES)),
    autoescape=True,
    undefined=StrictUndefined,
    auto_reload=False,
)
_subject_env = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


def _bounded(text: str) -> str:
    if len(text) > MAX_OUTPUT_CHARS:
        raise RenderError(f"The rendered email is larger than {MAX_OUTPUT_CHARS // 1024} KB.")
    return text


def render_builtin(key: str, context: dict[str, Any]) -> Rendered:
    """Render one of Herald's built-in system mails with plain-dict context."""
    if key not in BUILTIN_SUBJECTS:
        raise RenderError(f"There is no built-in email template called {key!r}.")
    try:
        subject = _subject_env.from_string(BUILTIN_SUBJECTS[key]).render(context)
        html = _env.get_template(f"{key}.html").render(context)
        text = _env.get_template(f"{key}.txt").render(context)
    except TemplateError as exc:
        raise RenderError(f"Template {key!r} could not be rendered: {exc.message}") from exc
    subject = " ".join(subject.split())[:200]
    return Rendered(subject=subject, html=_bounded(html), text=_bounded(text))
