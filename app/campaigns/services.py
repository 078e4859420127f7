"""Campaign rules: audience, review, fan-out through the outbox, scheduling, pause, cancel,
resend, progress. Fan-out writes every invitation, message and 'queued' event in one
transaction with COPY, in chunks, so memory stays bounded for 100,000 recipients."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import delete, func, or_, select, text, update

from app import clock
from app.audit import audit
from app.campaigns import reinvite
from app.deadletters.services import DeadLetterError, Filters, retry
from app.extensions import db
from app.invitations import fixed_time
from app.invitations.lifecycle import supersede_older
from app.invitations.tokens import new_token
from app.mail.links import sample_invitation_url
from app.models import (
    Campaign,
    CampaignStatus,
    Candidate,
    EmailTemplate,
    InterviewSlot,
    Invitation,
    InvitationStatus,
    Job,
    Message,
    MessageStatus,
    Organization,
    Reminder,
    Role,
    SlotStatus,
    Suppression,
    TemplateKind,
    User,
    default_template,
)
from app.outbox import transitions
from app.outbox.queue import queue_message
from app.outbox.spec import COPY_COLUMNS, MessageSpec
from app.templates_editor.services import render

CHUNK = 5000
_CANDIDATE_COLUMNS = ("id", "email", "first_name", "last_name", "phone", "timezone", "custom")


class CampaignError(Exception):
    """A campaign action that cannot be done; the message says why."""


def audience_query(org: Organization, audience: dict[str, Any]) -> Any:
    """Candidates of the org selected by tag, search text or explicit ids."""
    query = select(Candidate).where(Candidate.org_id == org.id)
    if audience.get("tag"):
        query = query.where(Candidate.tags.any(audience["tag"]))
    if audience.get("q"):
        like = f"%{audience['q'].replace('%', '')}%"
        query = query.where(
            or_(
                Candidate.email.ilike(like),
                Candidate.first_name.ilike(like),
                Candidate.last_name.ilike(like),
            )
        )
    if audience.get("ids"):
        query = query.where(Candidate.id.in_(audience["ids"]))
    return query


def _suppressed(org: Organization, kind: str) -> Any:
    return select(Suppression.email).where(
        Suppression.org_id == org.id,
        or_(Suppression.scope.contains(["all"]), Suppression.scope.contains([kind])),
    )


def count(
    org: Organization, audience: dict[str, Any], kind: str = "invitation", job_id: int | None = None
) -> dict:
    """Recipients and exclusions (suppressed or unsubscribed; with a job, those who already hold
    an invitation for it unless included), for the live count and review."""
    base = audience_query(org, audience).subquery()
    total = db.session.scalar(select(func.count()).select_from(base)) or 0
    suppressed = base.c.email.in_(_suppressed(org, kind))
    excluded = db.session.scalar(select(func.count()).select_from(base).where(suppressed)) or 0
    invited = 0
    if job_id is not None and not audience.get("include_invited"):
        invited = (
            db.session.scalar(
                select(func.count())
                .select_from(base)
                .where(~suppressed, base.c.id.in_(reinvite.held(org.id, job_id)))
            )
            or 0
        )
    return {
        "total": total,
        "recipients": total - excluded - invited,
        "suppressed": excluded,
        "invited": invited,
    }


def local_to_utc(value: datetime, zone: str) -> datetime:
    """A wall-clock time in the org's zone as UTC; refuses times a DST change skips."""
    tz = ZoneInfo(zone)
    aware = value.replace(tzinfo=tz)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError as exc:  # year 1 or 9999: past the calendar's edge in UTC
        raise CampaignError("Pick a date and time in the next few years.") from exc
    if utc.astimezone(tz).replace(tzinfo=None) != value:
        raise CampaignError(
            f"{value.day} {value:%b %Y %H:%M} does not exist in {zone}: the clocks "
            "change then. Pick another time."
        )
    return utc


SCHEDULING = ("fixed", "slots", "none")


def scheduling_choice(choice: str | None, slot_starts_at: datetime | None) -> str:
    """One fixed time, slots to pick from, or no time yet; a fixed time needs the time, and
    slots exclude it (so a campaign never offers both)."""
    if choice not in SCHEDULING:  # an older form: a time given means a fixed time
        return "fixed" if slot_starts_at else "none"
    if choice == "fixed" and slot_starts_at is None:
        raise CampaignError("Pick the interview time, or let candidates pick a slot.")
    if choice != "fixed" and slot_starts_at is not None:
        raise CampaignError(
            "Choose one: a fixed interview time, or slots candidates pick from (clear the time)."
        )
    return choice


def slot_counts(campaign: Campaign) -> dict[str, int]:
    """Open slots ahead and their free places, for the review and the launch check."""
    row = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(InterviewSlot.capacity - InterviewSlot.booked), 0),
        ).where(
            InterviewSlot.campaign_id == campaign.id,
            InterviewSlot.status == SlotStatus.OPEN,
            InterviewSlot.starts_at > clock.now(),
        )
    ).one()
    return {"open": row[0], "free": int(row[1])}


def create(
    org: Organization,
    user: User,
    *,
    name: str,
    job: Job,
    template: EmailTemplate,
    audience: dict,
    respond_by: datetime | None,
    slot_starts_at: datetime | None,
    location: str | None,
    scheduling: str | None = None,
) -> Campaign:
    """A draft campaign with the template's current version pinned."""
    if template.current_version_id is None:
        raise CampaignError("That template has no saved version.")
    slot_end = slot_starts_at + timedelta(minutes=job.duration_minutes) if slot_starts_at else None
    campaign = Campaign(
        org_id=org.id,
        name=name.strip(),
        job_id=job.id,
        template_id=template.id,
        template_version_id=template.current_version_id,
        audience=audience,
        respond_by=respond_by,
        slot_starts_at=slot_starts_at,
        slot_ends_at=slot_end,
        location=location or None,
        scheduling=scheduling or ("fixed" if slot_starts_at else "none"),
        created_by_id=user.id,
        status=CampaignStatus.DRAFT,
    )
    db.session.add(campaign)
    db.session.flush()
    audit(org.id, user, "campaign.created", campaign=campaign.name)
    return campaign


def shared_context(
    org: Organization, campaign: Campaign, job: Job, recruiter: User | None, expires_at: datetime
) -> dict:
    """Template data every recipient shares, frozen on the campaign at launch."""
    return {
        "job": {
            "title": job.title,
            "department": job.department or "",
            "location": job.location or "",
            "interview_format": job.interview_format,
            "duration_minutes": job.duration_minutes,
            "hiring_manager": job.hiring_manager or "",
            **(job.custom or {}),
        },
        "interview": {
            "starts_at": campaign.slot_starts_at.isoformat() if campaign.slot_starts_at else "",
            "ends_at": campaign.slot_ends_at.isoformat() if campaign.slot_ends_at else "",
            "location": campaign.location or job.location or "",
        },
        "invitation": {"expires_at": expires_at.isoformat()},
        "recruiter": {
            "name": recruiter.name if recruiter else org.name,
            "email": recruiter.email if recruiter else "",
        },
        "org": {"name": org.name, "address": org.postal_address or ""},
    }


def _full_name(person: Any) -> str:
    return " ".join(p for p in (person.first_name, person.last_name) if p) or person.email


def _context(person: Any, default_zone: str) -> dict:
    """One recipient's own data (links are added at render time)."""
    return {
        "candidate": {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "full_name": _full_name(person),
            "email": person.email,
            "phone": person.phone or "",
            "custom": person.custom or {},
        },
        "recipient_timezone": person.timezone or default_zone,
    }


def reply_deadline(org: Organization, campaign: Campaign, send_after: datetime) -> datetime:
    """When the links expire: the reply deadline if one was set; else when the interview
    starts, if it has a time; never later than the org's link lifetime after sending."""
    latest = send_after + timedelta(days=org.invitation_ttl_days)
    chosen = campaign.respond_by or campaign.slot_starts_at or latest
    return min(chosen, latest)


def fan_out(org: Organization, campaign: Campaign, send_after: datetime) -> int:
    """Write an invitation, a queued message and its event per recipient (COPY, one txn)."""
    job = db.session.get(Job, campaign.job_id)
    recruiter = db.session.get(User, campaign.created_by_id) if campaign.created_by_id else None
    kind = db.session.get(EmailTemplate, campaign.template_id).kind
    expires_at = reply_deadline(org, campaign, send_after)
    chosen = reinvite.leave_out(
        audience_query(org, campaign.audience).where(
            Candidate.email.not_in(_suppressed(org, kind))
        ),
        org.id,
        campaign.job_id,
        campaign.audience,
    ).subquery()
    query = (
        select(*(chosen.c[name] for name in _CANDIDATE_COLUMNS))
        .order_by(chosen.c.id)
        .execution_options(yield_per=CHUNK)
    )
    raw = db.session.connection().connection.driver_connection
    org_id, campaign_id, job_id = org.id, campaign.id, job.id
    version_id, creator_id = campaign.template_version_id, campaign.created_by_id
    campaign.context = shared_context(org, campaign, job, recruiter, expires_at)
    zone = org.timezone
    now, written = clock.now(), 0
    for people in db.session.execute(query).partitions(CHUNK):
        invitation_ids = _ids("invitations_id_seq", len(people))
        message_ids = _ids("messages_id_seq", len(people))
        invitations, messages, events = [], [], []
        for person, inv_id, msg_id in zip(people, invitation_ids, message_ids, strict=True):
            _, token_hash, encrypted = new_token()
            invitations.append(
                (
                    inv_id,
                    org_id,
                    campaign_id,
                    person.id,
                    job_id,
                    token_hash,
                    encrypted,
                    expires_at,
                    "pending",
                    0,
                    now,
                )
            )
            spec = MessageSpec(
                org_id=org_id,
                kind=kind,
                to_email=person.email,
                to_name=_full_name(person),
                context=_context(person, zone),
                template_version_id=version_id,
                campaign_id=campaign_id,
                campaign_context=True,
                invitation_id=inv_id,
                invitation_link=True,
                candidate_id=person.id,
                unsubscribe_kind="invitation",
                created_by_id=creator_id,
                idempotency_key=f"campaign:{campaign_id}:candidate:{person.id}",
                send_after=send_after,
            )
            messages.append(spec.copy_row(msg_id, org, now))
            events.append((org_id, msg_id, "queued", "{}", now))
        with raw.cursor() as cursor:
            _copy(
                cursor,
                "invitations (id, org_id, campaign_id, candidate_id, job_id, token_hash, "
                "token_encrypted, expires_at, status, ics_sequence, created_at)",
                invitations,
            )
            _copy(cursor, f"messages ({', '.join(COPY_COLUMNS)})", messages)
            _copy(cursor, "events (org_id, message_id, type, detail, created_at)", events)
        written += len(people)
    return written


def _ids(sequence: str, n: int) -> list[int]:
    rows = db.session.execute(
        text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)"), {"n": n}
    )
    return [row[0] for row in rows]


def _copy(cursor: Any, target: str, rows: list[tuple]) -> None:
    with cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def launch(org: Organization, campaign: Campaign, user: User, at: datetime | None) -> int:
    """Send now or schedule (UTC): writes everything now, due at `at`. The caller commits, then
    wakes the dispatchers when sending now."""
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError("This campaign was already sent or scheduled.")
    if at is not None and at <= clock.now():
        raise CampaignError("That time is in the past. Pick a time ahead, or send now.")
    start = at or clock.now()
    if campaign.respond_by and campaign.respond_by <= start:
        raise CampaignError("The reply deadline would be over before the invitations go out.")
    if campaign.slot_starts_at and campaign.slot_starts_at <= start:
        raise CampaignError("The interview time would be over before the invitations go out.")
    if (
        campaign.respond_by
        and campaign.slot_starts_at
        and campaign.respond_by > campaign.slot_starts_at
    ):
        raise CampaignError(
            "The reply deadline is after the interview. Pick a deadline before it, or leave it "
            "empty: links then expire when the interview starts."
        )
    if campaign.scheduling == "slots" and not slot_counts(campaign)["free"]:
        raise CampaignError(
            "Candidates pick a slot in this campaign, but no open slot has a free place: "
            "add slots on the Schedule page first."
        )
    counts = count(org, campaign.audience, job_id=campaign.job_id)
    if counts["recipients"] == 0:
        raise CampaignError(
            "No one would receive this campaign: the audience is empty, or everyone in it is "
            "suppressed or already invited for this job (include them on the review to "
            "invite them again)."
        )
    locked = db.session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked.status != CampaignStatus.DRAFT:
        raise CampaignError("This campaign was already sent or scheduled.")
    written = fan_out(org, campaign, at or clock.now())
    campaign.recipients = written
    campaign.excluded = {"suppressed": counts["suppressed"], "invited": counts["invited"]}
    campaign.scheduled_at = at
    campaign.status = CampaignStatus.SCHEDULED if at else CampaignStatus.SENDING
    campaign.started_at = None if at else clock.now()
    if not at:
        supersede_older(campaign)
    audit(
        org.id,
        user,
        "campaign.scheduled" if at else "campaign.sent",
        campaign=campaign.name,
        recipients=written,
        at=at.isoformat() if at else None,
    )
    return written


def cancel(org: Organization, campaign: Campaign, user: User) -> int:
    """Stop a scheduled or sending campaign: unsent mail is cancelled, open links stop working,
    and candidates already invited get a cancellation notice (with a calendar CANCEL). The caller
    commits, then wakes the dispatchers."""
    if campaign.status not in (
        CampaignStatus.SCHEDULED,
        CampaignStatus.SENDING,
        CampaignStatus.PAUSED,
        CampaignStatus.SENT,
    ):
        raise CampaignError("Only a scheduled, sending, paused or sent campaign can be cancelled.")
    # (rows a sender holds now are cancelled by its begin, with the same event)
    stopped = transitions.cancel(
        Message.campaign_id == campaign.id,
        transitions.CAMPAIGN_CANCELLED,
        statuses=(MessageStatus.QUEUED,),
    )
    notified = _notify(org, campaign, TemplateKind.CANCELLED, ["pending", "accepted"])
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.campaign_id == campaign.id, Invitation.status.in_(["pending", "accepted"])
        )
        .values(status=InvitationStatus.REVOKED)
    )
    campaign.status = CampaignStatus.CANCELLED
    campaign.finished_at = clock.now()
    audit(
        org.id,
        user,
        "campaign.cancelled",
        campaign=campaign.name,
        unsent=stopped,
        notified=notified,
    )
    return stopped


def move_interview(org: Organization, campaign: Campaign, user: User, starts_at: datetime) -> int:
    """New interview time: the campaign, its reminders (they read the slot) and a rescheduled
    notice with an updated calendar entry (same UID, higher SEQUENCE) for everyone invited.
    The caller commits, then wakes the dispatchers."""
    if campaign.slot_starts_at is None:
        raise CampaignError("This campaign has no interview time to move.")
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.CANCELLED):
        raise CampaignError("Only an interview that was sent or scheduled can be moved.")
    if starts_at <= clock.now():
        raise CampaignError("The new time is in the past.")
    job = db.session.get(Job, campaign.job_id)
    campaign.slot_starts_at = starts_at
    campaign.slot_ends_at = starts_at + timedelta(minutes=job.duration_minutes)
    shared = dict(campaign.context)
    shared["interview"] = dict(
        shared.get("interview", {}),
        starts_at=starts_at.isoformat(),
        ends_at=campaign.slot_ends_at.isoformat(),
    )
    if campaign.respond_by is None:  # the links expired when the interview started: they move
        sent = campaign.scheduled_at or campaign.started_at or campaign.created_at
        deadline = reply_deadline(org, campaign, sent)
        shared["invitation"] = dict(shared.get("invitation", {}), expires_at=deadline.isoformat())
        db.session.execute(
            update(Invitation)
            .where(Invitation.campaign_id == campaign.id, Invitation.status == "pending")
            .values(expires_at=deadline)
        )
    campaign.context = shared
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.campaign_id == campaign.id, Invitation.status.in_(["pending", "accepted"])
        )
        .values(ics_sequence=Invitation.ics_sequence + 1)
    )
    notified = _notify(org, campaign, TemplateKind.RESCHEDULED, ["pending", "accepted"])
    reminded = select(Invitation.id).where(Invitation.campaign_id == campaign.id)
    db.session.execute(delete(Reminder).where(Reminder.invitation_id.in_(reminded)))  # re-armed
    audit(
        org.id,
        user,
        "campaign.interview_moved",
        campaign=campaign.name,
        to=starts_at.isoformat(),
        notified=notified,
    )
    return notified


def _notify(org: Organization, campaign: Campaign, kind: TemplateKind, statuses: list[str]) -> int:
    """Queue a transactional notice (rescheduled / cancelled) to every candidate whose
    invitation already went out, with their own data and link."""
    template = default_template(org.id, kind)
    if template is None:
        return 0
    originals = db.session.execute(
        select(Message, Invitation.status, Invitation.ics_sequence)
        .join(Invitation, Invitation.id == Message.invitation_id)
        .where(
            Message.campaign_id == campaign.id,
            Message.kind == campaign.template.kind,
            Message.status == MessageStatus.SENT,
            Invitation.status.in_(statuses),
        )
    )
    count = 0
    for original, answered, sequence in originals:
        context = dict(original.context)
        context.pop("_unsubscribe", None)  # transactional: no unsubscribe link needed
        if answered == InvitationStatus.ACCEPTED and campaign.slot_starts_at:  # on a calendar
            cancel = kind == TemplateKind.CANCELLED  # (moving bumped the SEQUENCE already)
            context["_calendar"] = fixed_time.entry(
                org,
                campaign,
                campaign.job,
                original.invitation_id,
                sequence + (1 if cancel else 0),
                zone=context.get("recipient_timezone"),
                cancel=cancel,
            )
        queue_message(
            org_id=org.id,
            kind=kind.value,
            template="version",
            to_email=original.to_email,
            to_name=original.to_name,
            context=context,
            idempotency_key=f"{kind.value}:{original.invitation_id}:{uuid.uuid4().hex[:8]}",
            template_version_id=template.current_version_id,
            candidate_id=original.candidate_id,
            campaign_id=campaign.id,
            invitation_id=original.invitation_id,
        )
        count += 1
    return count


def pause(org: Organization, campaign: Campaign, user: User) -> None:
    if campaign.status not in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED):
        raise CampaignError("Only a sending or scheduled campaign can be paused.")
    campaign.status = CampaignStatus.PAUSED
    audit(org.id, user, "campaign.paused", campaign=campaign.name)


def resume(org: Organization, campaign: Campaign, user: User, role: Role) -> None:
    """Send again (`role` is the acting user's: a campaign Herald paused needs an admin). The
    caller commits, then wakes the dispatchers."""
    if campaign.status != CampaignStatus.PAUSED:
        raise CampaignError("Only a paused campaign can be resumed.")
    if campaign.paused_reason:
        if not role.at_least(Role.ADMIN):
            raise CampaignError(
                "Herald paused this campaign for its bounces or complaints: an admin resumes it."
            )
        campaign.paused_reason = None
    due = campaign.scheduled_at is None or campaign.scheduled_at <= clock.now()
    campaign.status = CampaignStatus.SENDING if due else CampaignStatus.SCHEDULED
    if due and campaign.started_at is None:
        campaign.started_at = clock.now()
        supersede_older(campaign)
    audit(org.id, user, "campaign.resumed", campaign=campaign.name)


def resend_failed(org: Organization, campaign: Campaign, user: User) -> int:
    """Queue the failed messages again (same rows, same links): the dead-letter retry path. The
    caller commits, then wakes the dispatchers (on CampaignError it rolls back)."""
    if campaign.status not in (CampaignStatus.SENT, CampaignStatus.SENDING):
        raise CampaignError("Resending is for a campaign that has been sent.")
    campaign.status = CampaignStatus.SENDING
    try:
        return retry(org.id, user, None, Filters(campaign_id=campaign.id))
    except DeadLetterError as exc:
        raise CampaignError("No failed emails to resend.") from exc


def progress(campaign: Campaign, per_minute: int) -> dict[str, int]:
    """Message statuses and invitation answers for the progress view, and the seconds left at
    the org's rate (`per_minute`), which is what paces a healthy campaign."""
    messages = Counter(
        dict(
            db.session.execute(
                select(Message.status, func.count())
                .where(Message.campaign_id == campaign.id)
                .group_by(Message.status)
            ).all()
        )
    )
    answers = Counter(
        dict(
            db.session.execute(
                select(Invitation.status, func.count())
                .where(Invitation.campaign_id == campaign.id)
                .group_by(Invitation.status)
            ).all()
        )
    )
    queued = messages["queued"] + messages["sending"]
    done = sum(messages.values()) - queued  # sent, failed, discarded, suppressed, cancelled
    excluded = campaign.excluded.get("suppressed", 0) if campaign.excluded else 0
    return {
        "queued": queued,
        "sent": messages["sent"],
        "failed": messages["failed"],
        "discarded": messages["discarded"],
        "cancelled": messages["cancelled"],
        # left out at launch, and suppressed since (held back when their turn came)
        "suppressed": excluded + messages["suppressed"],
        "total": sum(messages.values()),
        "done": done,
        "accepted": answers["accepted"],
        "declined": answers["declined"],
        "pending": answers["pending"],
        "replaced": answers["superseded"],  # invited again by a newer campaign for the job
        "seconds_left": queued * 60 / max(1, per_minute),
    }


def start_due() -> int:
    """Scheduled campaigns whose time has come start sending; finished ones are marked sent.
    The caller commits."""
    now = clock.now()
    started = db.session.execute(
        update(Campaign)
        .where(Campaign.status == CampaignStatus.SCHEDULED, Campaign.scheduled_at <= now)
        .values(status=CampaignStatus.SENDING, started_at=now)
        .returning(Campaign.id)
    ).all()
    for (campaign_id,) in started:
        supersede_older(db.session.get(Campaign, campaign_id))
    finish_done()
    return len(started)


def finish_done() -> int:
    """Sending campaigns with nothing queued or in flight are marked sent (the caller commits)."""
    active = select(Message.id).where(
        Message.campaign_id == Campaign.id, Message.status.in_(["queued", "sending"])
    )
    done = db.session.execute(
        update(Campaign)
        .where(Campaign.status == CampaignStatus.SENDING, ~active.exists())
        .values(status=CampaignStatus.SENT, finished_at=clock.now())
        .returning(Campaign.id)
    ).all()
    return len(done)


def sample_recipient(org: Organization, campaign: Campaign) -> Candidate | None:
    return db.session.scalars(
        audience_query(org, campaign.audience).order_by(Candidate.id).limit(1)
    ).first()


def preview_for(org: Organization, campaign: Campaign, person: Candidate) -> Any:
    """The email as this candidate would get it (a sample link, nothing written)."""
    job = db.session.get(Job, campaign.job_id)
    recruiter = db.session.get(User, campaign.created_by_id) if campaign.created_by_id else None
    expires = reply_deadline(org, campaign, clock.now())
    context = shared_context(org, campaign, job, recruiter, expires)
    context.update(_context(person, org.timezone))
    context["invitation"]["url"] = sample_invitation_url()
    context["unsubscribe_url"] = current_app.config["PUBLIC_BASE_URL"] + "/u/preview"
    version = campaign.template_version
    return render(
        org, campaign.template.kind_enum, version.subject, version.html, version.text, context
    )
