"""Template rules: defaults, validation, immutable versions, restore, diff, delete, test send.
Nothing here commits: the route that calls it does."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, select

from app import clock
from app.audit import audit
from app.extensions import db
from app.mail import catalogue
from app.mail.compose import (
    MAX_BODY_BYTES,
    MAX_SUBJECT,
    brand_for,
    check_source,
    render_authored,
)
from app.mail.outbox import queue_message
from app.mail.render import Rendered
from app.mail.sandbox import TemplateProblem
from app.models import (
    TEMPLATE_TEST,
    EmailTemplate,
    Message,
    MessageStatus,
    Organization,
    TemplateKind,
    TemplateVersion,
    User,
)
from app.templates_editor.defaults import DEFAULTS


@dataclass
class Problem:
    """One validation finding, tied to a form field, with a location when known."""

    field: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"Line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}" if self.line else self.message


class InvalidTemplate(Exception):
    """Saving was refused; `problems` says what to fix (the edit is kept)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


class TemplateInUse(Exception):
    """The template is pinned by mail that has not gone out yet."""


def preview_context(org: Organization, user: User | None, overrides: dict[str, Any]) -> dict:
    """Sample data for previews and test sends: the catalogue's samples, the org, the user."""
    values = {"org.name": org.name, "org.address": org.postal_address or ""}
    if user is not None:
        values |= {"recruiter.name": user.name, "recruiter.email": user.email}
    context = catalogue.sample_context(values | {k: v for k, v in overrides.items() if v})
    context["recipient_timezone"] = overrides.get("recipient_timezone") or org.timezone
    return context


def render(
    org: Organization, kind: TemplateKind, subject: str, html: str, text: str | None, context: dict
) -> Rendered:
    """Render a template's content for this org (TemplateProblem when it cannot be)."""
    return render_authored(
        subject=subject,
        html=html,
        text=text,
        brand=brand_for(org),
        context=context,
        bulk=kind.is_bulk,
    )


def validate(
    org: Organization, kind: TemplateKind, subject: str, html: str, text: str | None
) -> list[Problem]:
    """Everything wrong with this content, per field; empty when it can be saved."""
    problems: list[Problem] = []
    if not subject.strip():
        problems.append(Problem("subject", "The subject is empty."))
    elif len(subject) > MAX_SUBJECT:
        problems.append(Problem("subject", f"The subject is over {MAX_SUBJECT} characters."))
    if len(html.encode()) > MAX_BODY_BYTES:
        problems.append(Problem("html", f"The body is over {MAX_BODY_BYTES // 1024} KB."))
    if not html.strip():
        problems.append(Problem("html", "The body is empty."))
    for field, source in (("subject", subject), ("html", html), ("text", text or "")):
        try:
            check_source(source, "html" if field == "html" else "text")
        except TemplateProblem as exc:
            problems.append(Problem(field, exc.message, exc.line, exc.column))
    if problems:
        return problems
    try:
        rendered = render(org, kind, subject, html, text, preview_context(org, None, {}))
    except TemplateProblem as exc:
        return [Problem("html", exc.message, exc.line, exc.column)]
    unsubscribe = catalogue.sample_context()["unsubscribe_url"]
    if kind.is_bulk and (unsubscribe not in rendered.html or unsubscribe not in rendered.text):
        problems.append(
            Problem("html", "Bulk mail must carry the unsubscribe link ({{ unsubscribe_url }}).")
        )
    return problems


@event.listens_for(TemplateVersion, "before_update")
def _versions_are_immutable(mapper: Any, connection: Any, target: TemplateVersion) -> None:
    """A saved version never changes: mail pins it."""
    raise RuntimeError("Template versions are immutable; save a new version instead.")


def _next_number(template: EmailTemplate) -> int:
    lock = select(EmailTemplate.id).where(EmailTemplate.id == template.id).with_for_update()
    db.session.execute(lock)  # one save at a time per template
    query = select(func.coalesce(func.max(TemplateVersion.number), 0)).where(
        TemplateVersion.template_id == template.id
    )
    return (db.session.scalar(query) or 0) + 1


def add_version(
    template: EmailTemplate,
    actor: User | None,
    subject: str,
    html: str,
    text: str | None,
    note: str | None = None,
) -> TemplateVersion:
    """Append an immutable version and make it current (no commit)."""
    version = TemplateVersion(
        org_id=template.org_id,
        template_id=template.id,
        number=_next_number(template),
        subject=subject,
        html=html,
        text=text or None,
        note=note,
        created_by_id=actor.id if actor else None,
    )
    db.session.add(version)
    db.session.flush()
    template.current_version_id = version.id
    template.updated_at = clock.now()
    return version


def create_defaults(org: Organization, actor: User | None) -> list[EmailTemplate]:
    """One good default template per kind (for a new organization)."""
    made = []
    for kind, (name, subject, html) in DEFAULTS.items():
        template = EmailTemplate(org_id=org.id, name=name, kind=kind, is_default=True)
        db.session.add(template)
        db.session.flush()
        add_version(template, actor, subject, html, None, note="Herald's default")
        made.append(template)
    return made


def create(org: Organization, actor: User, name: str, kind: TemplateKind) -> EmailTemplate:
    """A new template of `kind`, starting from that kind's default content."""
    _, subject, html = DEFAULTS[kind]
    template = EmailTemplate(org_id=org.id, name=name.strip(), kind=kind, is_default=False)
    db.session.add(template)
    db.session.flush()
    add_version(template, actor, subject, html, None, note="Created")
    audit(org.id, actor, "template.created", template=template.name)
    return template


def save(
    org: Organization,
    template: EmailTemplate,
    actor: User,
    *,
    name: str,
    subject: str,
    html: str,
    text: str | None,
) -> TemplateVersion | None:
    """Validate and save as a new version (the caller commits); None when only the name, or
    nothing, changed."""
    problems = validate(org, template.kind_enum, subject, html, text)
    if not name.strip():
        problems.insert(0, Problem("name", "Give the template a name."))
    if problems:
        raise InvalidTemplate(problems)
    current = template.current_version
    template.name = name.strip()
    if current and (current.subject, current.html, current.text or "") == (
        subject,
        html,
        text or "",
    ):
        return None
    return add_version(template, actor, subject, html, text)


def restore(template: EmailTemplate, version: TemplateVersion, actor: User) -> TemplateVersion:
    """Make an old version's content current again, as a new version."""
    restored = add_version(
        template,
        actor,
        version.subject,
        version.html,
        version.text,
        note=f"Restored from version {version.number}",
    )
    return restored


def versions(template: EmailTemplate) -> list[TemplateVersion]:
    query = select(TemplateVersion).where(TemplateVersion.template_id == template.id)
    return list(db.session.scalars(query.order_by(TemplateVersion.number.desc())))


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def diff(old: TemplateVersion, new: TemplateVersion) -> list[tuple[str, str]]:
    """Line diff of subject, body and text: (kind, line) with kind in ' ', '+', '-', '@'."""
    lines: list[tuple[str, str]] = []
    for label, a, b in (
        ("Subject", old.subject, new.subject),
        ("HTML body", old.html, new.html),
        ("Text body", old.text or "", new.text or ""),
    ):
        chunk = list(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=2))
        if not chunk:
            continue
        lines.append(("@", f"{label}"))
        for line in chunk[2:]:
            hunk = _HUNK.match(line)
            if hunk:  # "@@ -3,4 +3,5 @@": where the change is, as a person says it
                lines.append(("@", f"{label}, from line {hunk.group(1)}"))
                continue
            lines.append((line[:1] if line[:1] in "+-" else " ", line[1:]))
    return lines


def in_use(template: EmailTemplate) -> int:
    """How many emails not yet sent are pinned to one of this template's versions."""
    query = (
        select(func.count())
        .select_from(Message)
        .join(TemplateVersion, TemplateVersion.id == Message.template_version_id)
        .where(
            TemplateVersion.template_id == template.id,
            Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]),
        )
    )
    return db.session.scalar(query) or 0


def delete(org: Organization, template: EmailTemplate, actor: User) -> None:
    """Remove a template from the list; its versions stay for the mail already sent with them."""
    pending = in_use(template)
    if pending:
        raise TemplateInUse(
            f"“{template.name}” is used by {pending} scheduled or queued email"
            f"{'s' if pending != 1 else ''}. It can be deleted once they are sent or cancelled."
        )
    template.deleted_at = clock.now()
    template.is_default = False
    audit(org.id, actor, "template.deleted", template=template.name)


def duplicate(org: Organization, template: EmailTemplate, actor: User) -> EmailTemplate:
    """A copy with the current content as its first version."""
    copy = EmailTemplate(org_id=org.id, name=f"Copy of {template.name}"[:120], kind=template.kind)
    db.session.add(copy)
    db.session.flush()
    current = template.current_version
    add_version(
        copy,
        actor,
        current.subject,
        current.html,
        current.text,
        note=f"Copied from {template.name} v{current.number}",
    )
    return copy


def make_default(org: Organization, template: EmailTemplate, actor: User) -> None:
    """The default template of its kind (used when a campaign doesn't pick one)."""
    for other in db.session.scalars(
        select(EmailTemplate).where(
            EmailTemplate.org_id == org.id, EmailTemplate.kind == template.kind
        )
    ):
        other.is_default = other.id == template.id
    audit(org.id, actor, "template.default", template=template.name)


def send_test(
    org: Organization, template: EmailTemplate, user: User, overrides: dict[str, Any]
) -> Message:
    """Queue the current version to the current user with sample data (the real pipeline)."""
    context = preview_context(org, user, overrides)
    context["candidate"] = dict(context["candidate"], email=user.email)
    context["candidate"]["custom"] = dict(context["candidate"]["custom"])
    message = queue_message(
        org_id=org.id,
        kind=TEMPLATE_TEST,
        template="version",
        to_email=user.email,
        to_name=user.name,
        context=_jsonable(context),
        created_by_id=user.id,
    )
    message.template_version_id = template.current_version_id
    return message


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value
