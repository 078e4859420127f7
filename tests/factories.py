"""A factory facade: make_org(), make_user(org=...), and one maker per tenant model.

TENANT_FACTORIES maps every tenant model to a maker; the tenancy walk test fails when a new tenant
model has none, so coverage grows with the schema.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import select

from app import clock
from app.auth.services import hash_password
from app.extensions import db
from app.models import (
    AuditEntry,
    Booking,
    Campaign,
    Candidate,
    CandidateImport,
    CandidateImportChunk,
    CandidateImportProblem,
    EmailTemplate,
    Event,
    InterviewSlot,
    Invitation,
    Job,
    Membership,
    Message,
    Organization,
    ProviderAccount,
    Reminder,
    Role,
    Rollup,
    SlotInterviewer,
    Suppression,
    TeamInvite,
    TemplateKind,
    TemplateVersion,
    User,
)
from app.outbox.queue import kick_dispatcher, queue_message

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


def make_message(
    org: Organization, to_email: str = "candidate@example.com", lane: str | None = None
) -> Message:
    message = queue_message(
        org_id=org.id,
        kind="test",
        template="test_email",
        to_email=to_email,
        lane=lane,
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


def make_job(org: Organization, title: str = "Backend Engineer") -> Job:
    job = Job(org_id=org.id, title=title, department="Engineering", location="Remote")
    db.session.add(job)
    db.session.commit()
    return job


def make_candidate(
    org: Organization,
    email: str | None = None,
    tags: list[str] | None = None,
    first_name: str = "Cand",
) -> Candidate:
    candidate = Candidate(
        org_id=org.id,
        email=email or f"cand{next(_seq)}@example.com",
        first_name=first_name,
        last_name="Idate",
        tags=tags or [],
    )
    db.session.add(candidate)
    db.session.commit()
    return candidate


def make_candidate_import(org: Organization) -> CandidateImport:
    item = CandidateImport(
        org_id=org.id,
        filename="c.csv",
        encoding="utf-8",
        delimiter=",",
        header=["email"],
    )
    db.session.add(item)
    db.session.flush()
    db.session.add(
        CandidateImportChunk(
            org_id=org.id, import_id=item.id, seq=0, data=b"email\na@example.com\n"
        )
    )
    db.session.commit()
    return item


def make_candidate_import_chunk(org: Organization) -> CandidateImportChunk:
    import_id = make_candidate_import(org).id
    return db.session.scalars(
        select(CandidateImportChunk).where(CandidateImportChunk.import_id == import_id)
    ).one()


def make_candidate_import_problem(org: Organization) -> CandidateImportProblem:
    problem = CandidateImportProblem(
        org_id=org.id, import_id=make_candidate_import(org).id, line=2, reason="bad", raw=["x"]
    )
    db.session.add(problem)
    db.session.commit()
    return problem


def make_campaign(org: Organization) -> Campaign:
    template = make_email_template(org)
    campaign = Campaign(
        org_id=org.id,
        name=f"Campaign {next(_seq)}",
        job_id=make_job(org).id,
        template_id=template.id,
        template_version_id=template.current_version_id,
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign


def make_invitation(org: Organization) -> Invitation:
    import hashlib
    import secrets

    campaign = make_campaign(org)
    invitation = Invitation(
        org_id=org.id,
        campaign_id=campaign.id,
        candidate_id=make_candidate(org).id,
        job_id=campaign.job_id,
        token_hash=hashlib.sha256(secrets.token_bytes(32)).digest(),
        expires_at=clock.now() + timedelta(days=14),
    )
    db.session.add(invitation)
    db.session.commit()
    return invitation


def make_reminder(org: Organization) -> Reminder:
    reminder = Reminder(
        org_id=org.id, invitation_id=make_invitation(org).id, kind="t-120m", due_at=clock.now()
    )
    db.session.add(reminder)
    db.session.commit()
    return reminder


def make_suppression(org: Organization, email: str | None = None) -> Suppression:
    item = Suppression(
        org_id=org.id, email=email or f"sup{next(_seq)}@example.com", reason="manual"
    )
    db.session.add(item)
    db.session.commit()
    return item


def make_provider_account(
    org: Organization,
    *,
    kind: str = "smtp",
    label: str | None = None,
    settings: dict | None = None,
    secret: str | None = None,
    position: int | None = None,
) -> ProviderAccount:
    from app.crypto import encrypt

    if position is None:
        position = db.session.query(ProviderAccount).filter_by(org_id=org.id).count()
    item = ProviderAccount(
        org_id=org.id,
        kind=kind,
        label=label or f"{kind} {next(_seq)}",
        settings=settings or {"host": "127.0.0.1", "port": 1, "security": "none"},
        secret_encrypted=encrypt(secret) if secret else None,
        position=position,
    )
    db.session.add(item)
    db.session.commit()
    return item


def make_interview_slot(
    org: Organization,
    campaign: Campaign | None = None,
    *,
    starts_in: timedelta = timedelta(days=3),
    minutes: int = 45,
    capacity: int = 1,
    location: str | None = "Room 4",
) -> InterviewSlot:
    """An open slot of a slots campaign (a new one unless given), starting `starts_in` from now."""
    campaign = campaign or make_campaign(org)
    campaign.scheduling = "slots"
    starts = clock.now().replace(second=0, microsecond=0) + starts_in
    slot = InterviewSlot(
        org_id=org.id,
        campaign_id=campaign.id,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=minutes),
        capacity=capacity,
        location=location,
    )
    db.session.add(slot)
    db.session.commit()
    return slot


def make_slot_interviewer(org: Organization) -> SlotInterviewer:
    person = SlotInterviewer(
        org_id=org.id,
        slot_id=make_interview_slot(org).id,
        name="Ada Interviewer",
        email=f"ada{next(_seq)}@example.com",
    )
    db.session.add(person)
    db.session.commit()
    return person


def make_booking(org: Organization) -> Booking:
    slot = make_interview_slot(org)
    invitation = make_invitation(org)
    invitation.campaign_id = slot.campaign_id
    slot.booked = 1
    booking = Booking(
        org_id=org.id,
        campaign_id=slot.campaign_id,
        slot_id=slot.id,
        invitation_id=invitation.id,
        candidate_id=invitation.candidate_id,
        time_zone="UTC",
        uid=f"booking-{next(_seq)}-{org.id}@herald.test",
    )
    db.session.add(booking)
    db.session.commit()
    return booking


def make_rollup(org: Organization) -> Rollup:
    item = Rollup(org_id=org.id, bucket=clock.now().replace(minute=0, second=0, microsecond=0))
    db.session.add(item)
    db.session.commit()
    return item


TENANT_FACTORIES = {
    Rollup: make_rollup,
    ProviderAccount: make_provider_account,
    Job: make_job,
    Candidate: make_candidate,
    CandidateImport: make_candidate_import,
    CandidateImportChunk: make_candidate_import_chunk,
    CandidateImportProblem: make_candidate_import_problem,
    Campaign: make_campaign,
    Invitation: make_invitation,
    Reminder: make_reminder,
    Suppression: make_suppression,
    EmailTemplate: make_email_template,
    TemplateVersion: make_template_version,
    Membership: make_membership,
    Message: make_message,
    Event: make_event,
    TeamInvite: make_team_invite,
    AuditEntry: make_audit_entry,
    InterviewSlot: make_interview_slot,
    SlotInterviewer: make_slot_interviewer,
    Booking: make_booking,
}


def launch_campaign(
    org: Organization, people: int = 3, *, tag: str = "round", user: User | None = None
) -> Campaign:
    """A sent-now invitation campaign to `people` new candidates (fan-out done, nothing sent)."""
    from app.campaigns import services

    org.send_rate_per_minute = 100_000
    db.session.commit()
    user = user or make_user(org, Role.RECRUITER)
    job = make_job(org)
    template = make_email_template(org, TemplateKind.INVITATION, name=f"Invite {next(_seq)}")
    for n in range(people):
        make_candidate(org, email=f"{tag}{n}@example.com", first_name=f"P{n}", tags=[tag])
    campaign = services.create(
        org,
        user,
        name=f"Campaign {next(_seq)}",
        job=job,
        template=template,
        audience={"tag": tag},
        respond_by=None,
        slot_starts_at=None,
        location=None,
    )
    services.launch(org, campaign, user, None)
    db.session.commit()
    kick_dispatcher()  # as the launch route does
    return campaign
