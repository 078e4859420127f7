"""Candidate rules: add one, edit one, delete one added by mistake. Services never commit; the
route does, so a refused change leaves nothing behind."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.audit import audit
from app.extensions import db
from app.models import Candidate, Message, Organization, User
from app.outbox import transitions

DELETED_NAME = "Deleted candidate"  # what their mail shows where the name was


class CandidateError(Exception):
    """A candidate change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Profile:
    """What a person types about a candidate (email already validated and normalised)."""

    email: str
    first_name: str
    last_name: str
    phone: str | None
    timezone: str | None
    custom: dict[str, str]


def _save(person: Candidate, profile: Profile) -> None:
    """Write the profile; a second candidate with the same email in the org is refused."""
    try:
        # the unique (org, email) index decides, race or not; the savepoint (which flushes what
        # was pending before it) keeps the rest of the transaction usable when it refuses
        with db.session.begin_nested():
            for name in ("email", "first_name", "last_name", "phone", "timezone", "custom"):
                setattr(person, name, getattr(profile, name))
            person.updated_at = clock.now()
            db.session.add(person)
            db.session.flush()
    except IntegrityError as exc:
        raise CandidateError(
            f"A candidate with the email {profile.email} already exists in this organization."
        ) from exc


def add(org: Organization, actor: User, profile: Profile) -> Candidate:
    """A new candidate, one at a time (the CSV import does many)."""
    person = Candidate(org_id=org.id, tags=[])
    _save(person, profile)
    audit(org.id, actor, "candidate.added", email=person.email)
    return person


def edit(org: Organization, actor: User, person: Candidate, profile: Profile) -> None:
    """Change a candidate's details; the audit entry names the fields that changed."""
    changed = [n for n in Profile.__dataclass_fields__ if getattr(person, n) != getattr(profile, n)]
    if not changed:
        return
    _save(person, profile)
    audit(org.id, actor, "candidate.edited", email=person.email, fields=changed)


def delete(org: Organization, actor: User, person: Candidate) -> int:
    """Remove a candidate added by mistake. Their invitations go with them (the links stop
    working, no reminder or notice follows); their mail stays, under DELETED_NAME, and what
    was not sent yet never will be. Returns how many emails were stopped."""
    theirs = select(Message.id).where(Message.org_id == org.id, Message.candidate_id == person.id)
    # a row being sent has its lease taken away: the sender's begin or record then skips it
    stopped = transitions.cancel(
        and_(Message.org_id == org.id, Message.candidate_id == person.id),
        "The candidate was deleted.",
        by=actor.name,
    )
    db.session.execute(
        update(Message)
        .where(Message.id.in_(theirs.scalar_subquery()))
        .values(to_name=DELETED_NAME)
        .execution_options(synchronize_session=False)
    )
    # the audit log keeps no address of a person deleted (their id tells the mail apart)
    audit(org.id, actor, "candidate.deleted", candidate=person.id, unsent=stopped)
    db.session.delete(person)  # invitations cascade; messages keep their rows (SET NULL)
    db.session.flush()
    return stopped
