"""Reminders: interview reminders to those who accepted or booked (their time, place and the link
to change it), nudges to those who have not answered, business hours read in the candidate's
zone (moved before the interview, or at once with the reason on the timeline; never dropped),
each reminder once however often the job runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app import clock
from app.campaigns import services
from app.extensions import db
from app.invitations.business_hours import BusinessHours, place
from app.jobs.campaigns import send_reminders
from app.models import Booking, Event, Invitation, Message, Reminder, Role, TemplateKind
from app.outbox.queue import kick_dispatcher

PARIS = ZoneInfo("Europe/Paris")


def _at(zone: ZoneInfo, *parts: int) -> datetime:
    """A wall time in a zone, as UTC."""
    return datetime(*parts, tzinfo=zone).astimezone(UTC)


@pytest.fixture
def round_(factories):
    """A fixed-time campaign (interview Tue 2 Jul 2030 08:00 Paris) to two candidates, sent on
    Thu 27 Jun; returns a function that builds it with the org's business hours on or off."""

    def _build(
        business_hours: bool,
        starts: datetime | None = None,
        zone: str | None = None,
        sent: datetime | None = None,
    ):
        clock.set_clock(clock.FrozenClock(sent or _at(PARIS, 2030, 6, 27, 10, 0)))
        org = factories.make_org("Acme")
        org.reminders_business_hours = business_hours
        user = factories.make_user(org, Role.RECRUITER)
        job = factories.make_job(org, "Data Engineer")
        job.location = "Room 4, 1 Market St"
        invite = factories.make_email_template(org, TemplateKind.INVITATION, name="Invite")
        factories.make_email_template(org, TemplateKind.REMINDER, name="Reminder")
        for n in range(2):
            person = factories.make_candidate(org, email=f"c{n}@example.com", tags=["r"])
            person.timezone = zone
        db.session.commit()
        campaign = services.create(
            org,
            user,
            name="Round",
            job=job,
            template=invite,
            audience={"tag": "r"},
            respond_by=None,
            slot_starts_at=starts or _at(PARIS, 2030, 7, 2, 8, 0),
            location=None,
        )
        services.launch(org, campaign, user, None)
        db.session.commit()
        kick_dispatcher()  # as the launch route does
        invitations = db.session.scalars(
            select(Invitation).where(Invitation.campaign_id == campaign.id).order_by(Invitation.id)
        ).all()
        return org, campaign, invitations

    return _build


def _run_at(moment: datetime) -> dict:
    clock.set_clock(clock.FrozenClock(moment))
    return send_reminders()


def _reminders() -> list[Message]:
    db.session.expire_all()
    return db.session.scalars(
        select(Message).where(Message.kind == "reminder").order_by(Message.id)
    ).all()


def _timeline(message: Message) -> list[str]:
    return [
        e.detail.get("reason", "")
        for e in db.session.scalars(select(Event).where(Event.message_id == message.id))
        if e.type == "business_hours"
    ]


def test_accepted_get_interview_reminders_and_the_others_nudges(round_, sink, run_worker):
    org, campaign, (accepted, pending) = round_(business_hours=False)
    run_worker()
    accepted.status = "accepted"
    db.session.commit()
    assert _run_at(_at(PARIS, 2030, 7, 1, 7, 59)) == {"sent": 0}
    assert _run_at(_at(PARIS, 2030, 7, 1, 8, 0)) == {"sent": 2}  # T-24h: one each
    assert _run_at(_at(PARIS, 2030, 7, 1, 8, 30)) == {"sent": 0}  # a rerun sends nothing
    kinds = {(m.invitation_id, m.context["reminder"]["kind"]) for m in _reminders()}
    assert kinds == {(accepted.id, "interview"), (pending.id, "pick_a_time")}
    assert {r.kind for r in db.session.scalars(select(Reminder))} == {"i-1440m", "t-1440m"}
    sink.reset()
    run_worker()
    [mail] = [m for m in sink.messages if m["to"] == [accepted_email(accepted)]]
    body = mail["data"].decode().replace("=\r\n", "").replace("=3D", "=")
    assert "Tuesday 2 July 2030, 08:00" in body  # the time, in the candidate's (org's) zone
    assert "Room 4, 1 Market St" in body  # where
    assert re.search(r"/i/[A-Za-z0-9_-]{43}", body)  # their page: reschedule or cancel there
    assert _run_at(_at(PARIS, 2030, 7, 2, 6, 0)) == {"sent": 2}  # T-2h
    assert _run_at(_at(PARIS, 2030, 7, 2, 6, 1)) == {"sent": 0}


def accepted_email(invitation: Invitation) -> str:
    return db.session.scalar(select(Message.to_email).where(Message.invitation_id == invitation.id))


def test_a_t_minus_2h_reminder_for_08_00_goes_the_evening_before(round_, run_worker, sink):
    """Business hours Mon–Fri 09:00–17:00 in Paris: the T-2h reminder of a Tuesday 08:00
    interview (due 06:00) goes on Monday at 17:00, the nearest allowed time before it."""
    org, campaign, (first, second) = round_(business_hours=True)
    for invitation in (first, second):
        invitation.status = "accepted"
    db.session.commit()
    assert _run_at(_at(PARIS, 2030, 7, 1, 8, 30)) == {"sent": 0}  # T-24h moved to 09:00
    assert _run_at(_at(PARIS, 2030, 7, 1, 9, 0)) == {"sent": 2}
    assert _run_at(_at(PARIS, 2030, 7, 1, 16, 59)) == {"sent": 0}
    assert _run_at(_at(PARIS, 2030, 7, 1, 17, 0)) == {"sent": 2}  # T-2h, the evening before
    run_worker()  # all go out (in one batch: each begun on the one before's round trip)
    assert {m.status for m in _reminders()} == {"sent"}
    assert _run_at(_at(PARIS, 2030, 7, 2, 6, 0)) == {"sent": 0}  # nothing left, none twice
    reminders = _reminders()
    assert len(reminders) == 4
    assert _timeline(reminders[-1]) == [
        "Moved to Mon 01 Jul 17:00 from Tue 02 Jul 06:00 to keep to business hours "
        "(Mon–Fri 09:00–17:00, Europe/Paris)."
    ]
    assert all(m.send_after <= _at(PARIS, 2030, 7, 1, 17, 0) for m in reminders)


def test_with_no_business_hours_left_it_goes_at_once_and_says_why(round_):
    """Run only at 06:30 on the day (the scheduler was down all Monday): nothing allowed lies
    between now and 08:00, so both reminders go at once, each saying why; none is dropped."""
    org, campaign, (first, second) = round_(business_hours=True)
    first.status = "accepted"
    db.session.commit()
    assert _run_at(_at(PARIS, 2030, 7, 2, 6, 30)) == {"sent": 4}
    for message in _reminders():
        [reason] = _timeline(message)
        assert reason.startswith("Sent at once: no business hours (Mon–Fri 09:00–17:00, ")


def test_business_hours_read_in_the_candidates_zone_across_a_weekend_and_dst(round_):
    """New York moves its clocks on Sunday 10 Mar 2030. A Monday 08:00 interview there: its
    T-2h reminder goes on Friday at 17:00 New York time (EST, UTC-5), not Saturday's or the
    org's (Paris) hours."""
    york = ZoneInfo("America/New_York")
    org, campaign, (first, second) = round_(
        business_hours=True,
        starts=_at(york, 2030, 3, 11, 8, 0),
        zone="America/New_York",
        sent=_at(york, 2030, 3, 1, 12, 0),
    )
    first.status = "accepted"
    db.session.commit()
    friday_5pm = datetime(2030, 3, 8, 22, 0, tzinfo=UTC)
    assert _run_at(friday_5pm - timedelta(minutes=1)) == {"sent": 0}
    # both offsets fall on the weekend or before 09:00 on Monday: all go on Friday at 17:00,
    # the interview reminders of the one who accepted and the nudges of the other
    assert _run_at(friday_5pm) == {"sent": 4}
    reasons = [_timeline(m)[0] for m in _reminders()]
    assert all(r.startswith("Moved to Fri 08 Mar 17:00 from ") for r in reasons)
    assert sum("from Mon 11 Mar 06:00" in r for r in reasons) == 2  # T-2h, in EDT
    assert sum("from Sun 10 Mar 08:00" in r for r in reasons) == 2  # T-24h
    assert all("America/New_York" in r for r in reasons)


def test_placement_across_the_autumn_change_prefers_the_nearer_side():
    """Paris leaves summer time on Sunday 27 Oct 2030. A Monday 10:00 (CET) interview's T-24h
    reminder (Sunday 10:00) goes on Monday at 09:00 CET, an hour before, rather than on
    Friday at 17:00 CEST, 41 hours earlier; each window is read with its own day's offset."""
    interview = _at(PARIS, 2030, 10, 28, 10, 0)
    due = interview - timedelta(hours=24)
    placed = place(due, interview, _at(PARIS, 2030, 10, 20, 0, 0), BusinessHours(), PARIS)
    assert placed.at == datetime(2030, 10, 28, 8, 0, tzinfo=UTC)  # 09:00 CET
    only_friday = BusinessHours(days=(4,))
    placed = place(due, interview, _at(PARIS, 2030, 10, 20, 0, 0), only_friday, PARIS)
    assert placed.at == datetime(2030, 10, 25, 15, 0, tzinfo=UTC)  # 17:00 CEST
    half_hour = interview - timedelta(minutes=30)  # 09:30: inside, so on time
    on_time = place(half_hour, interview, due, BusinessHours(), PARIS)
    assert on_time.at == half_hour and on_time.reason is None


def test_a_booked_slot_is_reminded_in_the_zone_it_was_booked_in(factories, sink, run_worker):
    clock.set_clock(clock.FrozenClock(_at(PARIS, 2030, 6, 27, 10, 0)))
    org = factories.make_org("Acme")
    factories.make_email_template(org, TemplateKind.REMINDER, name="Reminder")
    campaign = factories.launch_campaign(org, people=2)
    slot = factories.make_interview_slot(
        org, campaign, starts_in=timedelta(days=5), location="https://meet.example.com/xyz"
    )
    first, second = db.session.scalars(
        select(Invitation).where(Invitation.campaign_id == campaign.id).order_by(Invitation.id)
    ).all()
    slot.booked = 1
    db.session.add(
        Booking(
            org_id=org.id,
            campaign_id=campaign.id,
            slot_id=slot.id,
            invitation_id=first.id,
            candidate_id=first.candidate_id,
            time_zone="Asia/Tokyo",
            uid="booking-1@herald.test",
        )
    )
    db.session.commit()
    run_worker()
    sink.reset()
    assert _run_at(slot.starts_at - timedelta(hours=24)) == {"sent": 1}  # the booked one
    [message] = _reminders()
    assert message.invitation_id == first.id and message.context["reminder"]["kind"] == "interview"
    run_worker()
    body = sink.messages[0]["data"].decode().replace("=\r\n", "").replace("=3D", "=")
    local = slot.starts_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{local:%H:%M}" in body and "https://meet.example.com/xyz" in body


SETTINGS = {
    "name": "Acme",
    "timezone": "Europe/Paris",
    "s-send_rate_per_minute": 60,
    "s-invitation_ttl_days": 14,
    "s-candidate_daily_cap": 3,
    "s-max_retries": 3,
    "s-soft_bounce_threshold": 3,
    "s-soft_bounce_days": 7,
    "s-event_retention_days": 365,
    "r-hours": "24, 2",
    "r-business_hours": "y",
}


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"r-days": ["0"], "r-opens": "17:00", "r-closes": "09:00"}, "end after they start"),
        ({"r-days": ["0"], "r-opens": "9h", "r-closes": "17:00"}, "Use times like 09:00"),
        ({"r-days": ["0"], "r-opens": "09:00", "r-closes": "24:30"}, "Use times like 09:00"),
        ({"r-opens": "09:00", "r-closes": "17:00"}, "Choose at least one business day."),
        ({"r-days": ["9"], "r-opens": "09:00", "r-closes": "17:00"}, "not a valid choice"),
    ],
)
def test_business_hours_settings_refuse_what_cannot_be(factories, login_as, post, given, says):
    org = factories.make_org("Acme")
    login_as(factories.make_user(org, Role.ADMIN), org)
    response = post("/settings", {**SETTINGS, **given})
    assert response.status_code == 400 and says in response.text
    db.session.expire_all()
    assert (org.business_days, org.business_start_minute, org.business_end_minute) == (
        [0, 1, 2, 3, 4],
        540,
        1020,
    )
    assert not org.reminders_business_hours
    page = post(
        "/settings", {**SETTINGS, "r-days": ["5", "6"], "r-opens": "10:00", "r-closes": "24:00"}
    )
    assert page.status_code == 302
    db.session.expire_all()
    assert (org.business_days, org.business_start_minute, org.business_end_minute) == (
        [5, 6],
        600,
        1440,
    )


def test_a_rescheduled_booking_is_reminded_of_its_new_time(ctx):
    """The T-48h reminder went for the first time; the candidate then moved to a time two days
    later: that one gets its own T-48h reminder (once)."""
    from app.invitations import booking
    from tests.booking_setup import slot_campaign

    clock.set_clock(clock.FrozenClock(datetime(2030, 6, 3, 8, 0, tzinfo=UTC)))
    setup = slot_campaign()
    from tests import factories

    factories.make_email_template(setup.org, TemplateKind.REMINDER, name="Reminder")
    setup.org.reminder_offsets = [2880]
    first = setup.slot(timedelta(days=3))
    later = setup.slot(timedelta(days=5))
    invitation, token = setup.invite("ann@example.com")
    booking.book(setup.org, invitation, first.id, "Europe/Berlin")
    db.session.commit()
    assert _run_at(first.starts_at - timedelta(hours=48))["sent"] == 1
    clock.set_clock(clock.FrozenClock(first.starts_at - timedelta(hours=47, minutes=30)))
    booking.reschedule(setup.org, invitation, later.id, "Europe/Berlin")
    db.session.commit()
    assert _run_at(first.starts_at - timedelta(hours=47)) == {"sent": 0}
    assert _run_at(later.starts_at - timedelta(hours=48)) == {"sent": 1}
    assert _run_at(later.starts_at - timedelta(hours=47)) == {"sent": 0}
    reminded = [m.context["interview"]["starts_at"] for m in _reminders()]
    assert reminded[-1] == later.starts_at.isoformat()
