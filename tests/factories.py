"""A factory facade: make_org(), make_user(org=...), and one maker per tenant model.

TENANT_FACTORIES maps every tenant model to a maker; the tenancy walk test fails when a new tenant
model has none, so coverage grows with the schema.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from app import clock
from app.auth.services import hash_password
from app.extensions import db
from app.mail.outbox import queue_message
from app.models import (
    AuditEntry,
    EmailTemplate,
    Event,
    Membership,
    Message,
    Organization,
    Role,
    TeamInvite,
    TemplateKind,
    TemplateVersion,
    User,
)

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def make_org(name: str | None = None) -> Organization:
    org = Organization(name=name or f"Org {next(_seq)}", timezone="Europe/Paris")
    db.session.add(org)
    db.session.commit()
    return org


def make_user(
    org: Organization | None = None,
    role: Role = Role.OWNER,
    email: str | None = None,
    name: str | None = None,
    password: str = PASSWORD,
) -> User:
    n = next(_seq)
    user = User(
        email=email or f"user{n}@example.com",
        name=name or f"User {n}",
        password_hash=hash_password(password),
        email_verified_at=clock.now(),
    )
    db.session.add(user)
    db.session.flush()
    if org is not None:
        db.session.add(Membership(org_id=org.id, user_id=user.id, role=role))
    db.session.commit()
    return user


def make_membership(org: Organization) -> Membership:
    user = make_user(org, Role.RECRUITER)
    return db.session.query(Membership).filter_by(user_id=user.id, org_id=org.id).one()


def make_message(org: Organization, to_email: str = "candidate@example.com") -> Message:
    message = queue_message(
        org_id=org.id,
        kind="test",
        template="test_email",
        to_email=to_email,
        to_name="Cand Idate",
        context={"org": {"name": org.name}, "user": {"name": "Cand"}, "requested_at": "now"},
    )
    db.session.commit()
    return message


def make_event(org: Organization) -> Event:
    return make_message(org).events[0]


def make_team_invite(
    org: Organization, email: str | None = None, role: Role = Role.RECRUITER
) -> TeamInvite:
    team_invite = TeamInvite(
        org_id=org.id,
        email=email or f"invitee{next(_seq)}@example.com",
        role=role,
        nonce=f"{next(_seq):032d}",
        expires_at=clock.now() + timedelta(days=7),
    )
    db.session.add(team_invite)
    db.session.commit()
    return team_invite


def make_audit_entry(org: Organization) -> AuditEntry:
    entry = AuditEntry(org_id=org.id, action="test.entry")
    db.session.add(entry)
    db.session.commit()
    return entry


def make_email_template(
    org: Organization, kind: TemplateKind = TemplateKind.INVITATION, name: str | None = None
) -> EmailTemplate:
    from app.templates_editor.defaults import DEFAULTS
    from app.templates_editor.services import add_version

    template = EmailTemplate(org_id=org.id, name=name or f"Template {next(_seq)}", kind=kind)
    db.session.add(template)
    db.session.flush()
    _, subject, html = DEFAULTS[kind]
    add_version(template, None, subject, html, None)
    db.session.commit()
    return template


def make_template_version(org: Organization) -> TemplateVersion:
    return make_email_template(org).current_version


TENANT_FACTORIES = {
    EmailTemplate: make_email_template,
    TemplateVersion: make_template_version,
    Membership: make_membership,
    Message: make_message,
    Event: make_event,
    TeamInvite: make_team_invite,
    AuditEntry: make_audit_entry,
}
