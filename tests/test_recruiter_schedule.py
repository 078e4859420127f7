"""The recruiter's schedule, through HTTP: a campaign offers one time or slots; slots generated
from windows or added one by one (with interviewers); the page by day; close, reopen, cancel a
slot (candidates told and asked to pick again); move one candidate (atomic, updated .ics);
interviewers' calendar invitations; bad input refused whole; roles, tenancy and CSRF."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.models import (
    AuditEntry,
    Booking,
    Campaign,
    InterviewSlot,
    Invitation,
    Message,
    Role,
    SlotInterviewer,
    TemplateKind,
)

WINDOW = {
    "gen-windows-0-days": ["1", "2"],  # Tue, Wed
    "gen-windows-0-start": "10:00",
    "gen-windows-0-end": "12:00",
    "gen-first_day": "2030-07-01",  # a Monday
    "gen-last_day": "2030-07-07",
    "gen-duration": "45",
    "gen-buffer": "15",
    "gen-capacity": "1",
    "gen-location": "https://meet.example/abc",
}


@pytest.fixture
def setup(factories, login_as):
    org = factories.make_org("Acme")
    org.sender_email, org.sender_name, org.reply_to = "jobs@acme.example", "Acme", "hr@acme.example"
    db.session.commit()
    user = factories.make_user(org, Role.RECRUITER, email="rita@example.com", name="Rita")
    ada = factories.make_user(org, Role.VIEWER, email="ada@example.com", name="Ada")
    login_as(user, org)
    job = factories.make_job(org, "Data Engineer")
    template = factories.make_email_template(org, TemplateKind.INVITATION, name="Invite")
    factories.make_candidate(org, email="c0@example.com", first_name="Cleo", tags=["shortlist"])
    return org, user, ada, job, template


def _campaign(post, job, template) -> Campaign:
    response = post(
        "/campaigns/new",
        {
            "name": "Slots round",
            "job_id": job.id,
            "template_id": template.id,
            "tag": "shortlist",
            "scheduling": "slots",
        },
    )
    assert response.status_code == 302 and "/schedule" in response.location
    return db.session.scalars(select(Campaign).order_by(Campaign.id.desc())).first()


def _slots(campaign: Campaign) -> list[InterviewSlot]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(InterviewSlot)
            .where(InterviewSlot.campaign_id == campaign.id)
            .order_by(InterviewSlot.starts_at)
        )
    )


def _book(factories, org, campaign, slot, email: str) -> Booking:
    """A candidate books through the booking service, as their invitation page does."""
    from app.invitations import booking as bookings
    from app.invitations.tokens import new_token

    candidate = factories.make_candidate(org, email=email, first_name=email.split("@")[0])
    _, token_hash, encrypted = new_token()
    invitation = Invitation(
        org_id=org.id,
        campaign_id=campaign.id,
        candidate_id=candidate.id,
        job_id=campaign.job_id,
        token_hash=token_hash,
        token_encrypted=encrypted,
        expires_at=clock.now() + timedelta(days=30),
    )
    db.session.add(invitation)
    db.session.flush()
    booking = bookings.book(org, invitation, slot.id, "America/New_York")
    db.session.commit()
    return booking


def _messages_after(last_id: int) -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(Message.kind).where(Message.id > last_id)))


def _last_message_id() -> int:
    return db.session.scalar(select(func.coalesce(func.max(Message.id), 0)))


def _calendars(sink) -> dict[str, list[str]]:
    """Each recipient's .ics parts, unfolded."""
    found: dict[str, list[str]] = {}
    for mail in sink.messages:
        parsed = message_from_bytes(mail["data"], policy=policy.default)
        for part in parsed.walk():
            if part.get_content_type() == "text/calendar":
                text = part.get_content().replace("\r\n ", "").replace("\n ", "")
                found.setdefault(mail["to"][0], []).append(text)
    return found


def test_the_form_offers_one_time_or_slots(setup, post, client) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    assert campaign.scheduling == "slots" and campaign.slot_starts_at is None
    page = client.get(f"/campaigns/{campaign.id}/schedule").get_data(as_text=True)
    assert "No slots yet" in page and "Generate slots" in page
    assert (
        f'href="/campaigns/{campaign.id}">Review and send' in page
    )  # the way on, once slots are in
    base = {"name": "X", "job_id": job.id, "template_id": template.id}
    both = post(
        "/campaigns/new", base | {"scheduling": "slots", "slot_starts_at": "2030-07-01T10:00"}
    )
    assert both.status_code == 400 and "Choose one" in both.get_data(as_text=True)
    none = post("/campaigns/new", base | {"scheduling": "fixed"})
    assert none.status_code == 400 and "Pick the interview time" in none.get_data(as_text=True)
    fixed = post(
        "/campaigns/new", base | {"scheduling": "fixed", "slot_starts_at": "2030-07-01T10:00"}
    )
    assert fixed.status_code == 302 and "/schedule" not in fixed.location


def test_generate_slots_from_windows_with_interviewers(setup, post, client) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    data = WINDOW | {
        "gen-teammates": [str(ada.id)],
        "gen-outsiders": "Omar Ext, omar@partner.example",
    }
    response = post(f"/campaigns/{campaign.id}/slots/generate", data)
    assert response.status_code == 303
    slots = _slots(campaign)
    assert len(slots) == 4  # Tue and Wed, 10:00 and 11:00 (45 min + 15)
    assert slots[0].starts_at == datetime(2030, 7, 2, 8, tzinfo=UTC)  # 10:00 in Paris (CEST)
    assert slots[0].ends_at - slots[0].starts_at == timedelta(minutes=45)
    assert {(i.name, i.email, i.user_id) for i in slots[0].interviewers} == {
        ("Ada", "ada@example.com", ada.id),
        ("Omar Ext", "omar@partner.example", None),
    }
    page = client.get(f"/campaigns/{campaign.id}/schedule").get_data(as_text=True)
    assert "4 slots added" in page
    assert "Tuesday 2 July 2030" in page and "10:00–10:45" in page and "11:00–11:45" in page
    assert "0 of 1 booked" in page and "with Ada, Omar Ext" in page
    assert db.session.scalar(
        select(func.count()).where(AuditEntry.action == "campaign.slots_added")
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {
                "gen-windows-1-days": ["2"],
                "gen-windows-1-start": "11:30",
                "gen-windows-1-end": "13:00",
            },
            "overlap on Wed",
        ),
        (
            {
                "gen-first_day": "2030-01-01",
                "gen-last_day": "2030-12-31",
                "gen-windows-0-days": ["0", "1", "2", "3", "4"],
                "gen-windows-0-start": "08:00",
                "gen-windows-0-end": "20:00",
                "gen-duration": "15",
                "gen-buffer": "0",
            },
            "more than 500 slots",
        ),
        ({"gen-windows-0-start": "12:00", "gen-windows-0-end": "10:00"}, "end is not after"),
        ({"gen-capacity": "0"}, "between 1 and 500 candidates"),
        ({"gen-windows-0-days": []}, "its days, a start and an end"),
        ({"gen-last_day": "2030-06-01"}, "last day is before the first"),
        ({"gen-outsiders": "Omar, not-an-email"}, "is not an email address"),
        ({"gen-teammates": ["999999"]}, "from your team"),
        ({"gen-first_day": "0001-01-01"}, "between 2000 and 2199"),
        ({"gen-last_day": "9999-12-31"}, "between 2000 and 2199"),
    ],
)
def test_bad_generations_are_refused_and_write_nothing(setup, post, change, words) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    response = post(f"/campaigns/{campaign.id}/slots/generate", WINDOW | change)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert _slots(campaign) == []


def test_add_one_slot_and_refuse_a_time_the_clocks_skip(setup, post) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    one = {"add-day": "2030-03-31", "add-start": "02:30", "add-end": "03:30", "add-capacity": "3"}
    gap = post(f"/campaigns/{campaign.id}/slots", one)
    assert gap.status_code == 400 and "does not exist in Europe/Paris" in gap.get_data(as_text=True)
    backwards = post(
        f"/campaigns/{campaign.id}/slots", one | {"add-start": "11:00", "add-end": "10:00"}
    )
    assert backwards.status_code == 400 and "end after it starts" in backwards.get_data(
        as_text=True
    )
    past = post(
        f"/campaigns/{campaign.id}/slots",
        one | {"add-day": "2020-01-07", "add-start": "10:00", "add-end": "11:00"},
    )
    assert past.status_code == 400 and "in the future" in past.get_data(as_text=True)
    assert _slots(campaign) == []
    ok = post(f"/campaigns/{campaign.id}/slots", one | {"add-start": "10:00", "add-end": "11:30"})
    assert ok.status_code == 303
    (slot,) = _slots(campaign)
    assert slot.capacity == 3 and slot.starts_at == datetime(2030, 3, 31, 8, tzinfo=UTC)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_day_at_the_calendars_edge_is_refused_not_an_error(setup, post, day) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    one = {"add-day": day, "add-start": "00:00", "add-end": "00:30", "add-capacity": "1"}
    response = post(f"/campaigns/{campaign.id}/slots", one)
    assert response.status_code == 400
    assert "between 2000 and 2199" in response.get_data(as_text=True)
    assert _slots(campaign) == []


def test_a_teammate_in_two_slots_at_once_gets_a_warning(setup, post, client) -> None:
    org, user, ada, job, template = setup
    first = _campaign(post, job, template)
    second = _campaign(post, job, template)
    with_ada = WINDOW | {"gen-teammates": [str(ada.id)]}
    post(f"/campaigns/{first.id}/slots/generate", with_ada)
    one = {"add-day": "2030-07-02", "add-start": "10:30", "add-end": "11:00", "add-capacity": "1"}
    post(f"/campaigns/{second.id}/slots", one | {"add-teammates": [str(ada.id)]})
    page = client.get(f"/campaigns/{second.id}/schedule").get_data(as_text=True)
    assert "Ada interviews elsewhere in Herald at the same time" in page
    assert len(_slots(second)) == 1  # a warning, not a refusal


def test_move_a_candidate_atomically_with_calendar_updates(
    setup, post, factories, sink, run_worker
):
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    post(f"/campaigns/{campaign.id}/slots/generate", WINDOW | {"gen-teammates": [str(ada.id)]})
    slots = _slots(campaign)
    db.session.add(
        SlotInterviewer(org_id=org.id, slot_id=slots[0].id, name="Bo", email="bo@x.example")
    )
    db.session.commit()
    booking = _book(factories, org, campaign, slots[0], "cleo@example.com")
    run_worker()  # the confirmation and the interviewers' first invitations
    sink.reset()
    response = post(
        f"/campaigns/{campaign.id}/bookings/{booking.id}/move", {"slot_id": slots[1].id}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert [s.booked for s in _slots(campaign)] == [0, 1, 0, 0]
    assert db.session.get(Booking, booking.id).status == "moved"
    moved = db.session.scalars(select(Booking).where(Booking.status == "active")).one()
    assert moved.slot_id == slots[1].id and moved.sequence == 1 and moved.uid == booking.uid
    run_worker()
    ics = _calendars(sink)
    (candidate,) = ics["cleo@example.com"]
    assert "METHOD:REQUEST" in candidate and f"UID:{booking.uid}" in candidate
    assert "SEQUENCE:1" in candidate and "DTSTART:20300702T090000Z" in candidate
    (to_ada,) = ics["ada@example.com"]  # in both slots: an update of the same entry
    assert "METHOD:REQUEST" in to_ada and "ORGANIZER;CN=Acme:mailto:jobs@acme.example" in to_ada
    assert "ATTENDEE" in to_ada and "mailto:ada@example.com" in to_ada and "RSVP=FALSE" in to_ada
    (to_bo,) = ics["bo@x.example"]  # only in the old slot: the entry is cancelled
    assert "METHOD:CANCEL" in to_bo
    ada_mail = next(m for m in sink.messages if m["to"] == ["ada@example.com"])
    parsed = message_from_bytes(ada_mail["data"], policy=policy.default)
    assert parsed["Reply-To"] == "hr@acme.example" and "jobs@acme.example" in parsed["From"]
    text = next(m for m in sink.messages if m["to"] == ["cleo@example.com"])["data"].decode()
    assert "has moved" in text and "America/New_York" in text  # the candidate's own zone


def test_moving_into_a_full_or_closed_slot_is_refused_and_changes_nothing(setup, post, factories):
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    post(f"/campaigns/{campaign.id}/slots/generate", WINDOW)
    slots = _slots(campaign)
    booking = _book(factories, org, campaign, slots[0], "cleo@example.com")
    _book(factories, org, campaign, slots[1], "dan@example.com")
    before = _last_message_id()
    full = post(f"/campaigns/{campaign.id}/bookings/{booking.id}/move", {"slot_id": slots[1].id})
    assert full.status_code == 409 and "full, closed" in full.get_data(as_text=True)
    htmx = post(
        f"/campaigns/{campaign.id}/bookings/{booking.id}/move",
        {"slot_id": slots[1].id},
        headers={"HX-Request": "true"},
    )
    assert htmx.status_code == 409 and htmx.headers["HX-Refusal"] == "1"  # swapped in, shown
    assert 'role="alert">That slot is full' in htmx.get_data(as_text=True)
    post(f"/campaigns/{campaign.id}/slots/{slots[2].id}/close")
    closed = post(f"/campaigns/{campaign.id}/bookings/{booking.id}/move", {"slot_id": slots[2].id})
    assert closed.status_code == 409
    missing = post(f"/campaigns/{campaign.id}/bookings/{booking.id}/move", {"slot_id": "x"})
    assert missing.status_code == 400
    assert [s.booked for s in _slots(campaign)] == [1, 1, 0, 0]
    assert db.session.get(Booking, booking.id).sequence == 0
    assert db.session.get(Booking, booking.id).status == "active"
    assert _messages_after(before) == []


def test_cancel_a_slot_tells_its_candidates_and_asks_them_to_pick_again(
    setup, post, factories, sink, run_worker, client
):
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    post(
        f"/campaigns/{campaign.id}/slots/generate",
        WINDOW | {"gen-capacity": "2", "gen-teammates": [str(ada.id)]},
    )
    slot = _slots(campaign)[0]
    first = _book(factories, org, campaign, slot, "cleo@example.com")
    _book(factories, org, campaign, slot, "dan@example.com")
    run_worker()
    sink.reset()
    before = _last_message_id()
    response = post(f"/campaigns/{campaign.id}/slots/{slot.id}/cancel", follow_redirects=True)
    assert "2 candidates told and asked to pick another time" in response.get_data(as_text=True)
    db.session.expire_all()
    slot = db.session.get(InterviewSlot, slot.id)
    assert slot.status == "cancelled" and slot.booked == 0
    booking = db.session.get(Booking, first.id)
    assert booking.status == "cancelled" and booking.cancelled_at and booking.sequence == 1
    assert db.session.get(Invitation, booking.invitation_id).status == "pending"
    kinds = _messages_after(before)
    assert kinds == ["booking_cancelled"] * 2 + ["interviewer_invite"] * 2
    run_worker()
    ics = _calendars(sink)
    assert (
        all("METHOD:CANCEL" in c for cs in ics.values() for c in cs)
        and len(ics["ada@example.com"]) == 2
    )
    cleo = next(m for m in sink.messages if m["to"] == ["cleo@example.com"])["data"].decode()
    assert "Pick another time" in cleo and re.search(r"http://[^\s\"]+/i/[\w-]+", cleo)
    again = post(f"/campaigns/{campaign.id}/slots/{slot.id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.get_data(as_text=True)


def test_close_and_reopen_a_slot_with_htmx_fragments(setup, post, client) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    post(f"/campaigns/{campaign.id}/slots/generate", WINDOW)
    slot = _slots(campaign)[0]
    headers = {"HX-Request": "true"}
    closed = post(f"/campaigns/{campaign.id}/slots/{slot.id}/close", headers=headers)
    body = closed.get_data(as_text=True)
    assert closed.status_code == 200 and "<html" not in body and 'id="schedule-days"' in body
    assert "Slot closed" in body and "Open again" in body and "HX-Request" in closed.headers["Vary"]
    assert _slots(campaign)[0].status == "closed"
    post(f"/campaigns/{campaign.id}/slots/{slot.id}/reopen", headers=headers)
    assert _slots(campaign)[0].status == "open"
    full = client.get(f"/campaigns/{campaign.id}/schedule")
    assert "<html" in full.get_data(as_text=True) and "HX-Request" in full.headers["Vary"]
    fragment = client.get(f"/campaigns/{campaign.id}/schedule", headers=headers)
    assert "<html" not in fragment.get_data(as_text=True)


def test_a_slots_campaign_cannot_be_sent_without_free_slots(setup, post) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    response = post(f"/campaigns/{campaign.id}/launch", {"mode": "now"}, follow_redirects=True)
    assert "add slots on the Schedule page first" in response.get_data(as_text=True)
    assert db.session.get(Campaign, campaign.id).status == "draft"


def test_viewers_read_the_schedule_but_change_nothing(setup, post, client, login_as, factories):
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    post(f"/campaigns/{campaign.id}/slots/generate", WINDOW)
    slot = _slots(campaign)[0]
    booking = _book(factories, org, campaign, slot, "cleo@example.com")
    login_as(ada, org)
    page = client.get(f"/campaigns/{campaign.id}/schedule").get_data(as_text=True)
    assert "cleo" in page and "Generate slots" not in page and "Cancel slot" not in page
    for url, data in [
        (f"/campaigns/{campaign.id}/slots/generate", WINDOW),
        (f"/campaigns/{campaign.id}/slots", {}),
        (f"/campaigns/{campaign.id}/slots/{slot.id}/close", {}),
        (f"/campaigns/{campaign.id}/slots/{slot.id}/cancel", {}),
        (f"/campaigns/{campaign.id}/bookings/{booking.id}/move", {"slot_id": slot.id}),
    ]:
        assert post(url, data).status_code == 403, url
    assert _slots(campaign)[0].status == "open"


def test_another_orgs_campaign_slot_and_booking_answer_404(setup, post, client, factories):
    org, user, ada, job, template = setup
    mine = _campaign(post, job, template)
    post(f"/campaigns/{mine.id}/slots/generate", WINDOW)
    my_slot = _slots(mine)[0]
    my_booking = _book(factories, org, mine, my_slot, "cleo@example.com")
    other = factories.make_org("Other")
    theirs = factories.make_interview_slot(other)
    their_campaign = db.session.get(Campaign, theirs.campaign_id)
    their_booking = factories.make_booking(other)
    c, s, b = their_campaign.id, theirs.id, their_booking.id
    checks = [
        ("get", f"/campaigns/{c}/schedule", None),
        ("post", f"/campaigns/{c}/slots/generate", WINDOW),
        ("post", f"/campaigns/{c}/slots", {}),
        ("post", f"/campaigns/{c}/slots/{s}/close", {}),
        ("post", f"/campaigns/{c}/slots/{s}/reopen", {}),
        ("post", f"/campaigns/{c}/slots/{s}/cancel", {}),
        ("post", f"/campaigns/{mine.id}/slots/{s}/close", {}),  # their slot under my campaign
        ("post", f"/campaigns/{mine.id}/slots/{s}/cancel", {}),
        ("post", f"/campaigns/{mine.id}/bookings/{b}/move", {"slot_id": my_slot.id}),
        ("post", f"/campaigns/{mine.id}/bookings/{my_booking.id}/move", {"slot_id": s}),
        ("post", f"/campaigns/{c}/bookings/{b}/move", {"slot_id": s}),
        ("get", f"/campaigns/{2**40}/schedule", None),
        ("post", f"/campaigns/{mine.id}/slots/{2**70}/cancel", {}),  # beyond bigint
        ("post", f"/campaigns/{mine.id}/bookings/{my_booking.id}/move", {"slot_id": 10**30}),
    ]
    for method, url, data in checks:
        response = client.get(url) if method == "get" else post(url, data)
        assert response.status_code == 404, url
    db.session.expire_all()
    assert db.session.get(InterviewSlot, s).status == "open"
    assert db.session.get(Booking, my_booking.id).slot_id == my_slot.id


def test_every_post_needs_the_csrf_token(app, setup, post, factories) -> None:
    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    post(f"/campaigns/{campaign.id}/slots/generate", WINDOW)
    slot = _slots(campaign)[0]
    booking = _book(factories, org, campaign, slot, "cleo@example.com")
    app.config["WTF_CSRF_ENABLED"] = True
    from tests.conftest import session_token

    guest = app.test_client()
    with guest.session_transaction() as sess:
        sess["_user_id"], sess["org_id"] = session_token(app, user), org.id
    for url in [
        f"/campaigns/{campaign.id}/slots/generate",
        f"/campaigns/{campaign.id}/slots",
        f"/campaigns/{campaign.id}/slots/{slot.id}/close",
        f"/campaigns/{campaign.id}/slots/{slot.id}/reopen",
        f"/campaigns/{campaign.id}/slots/{slot.id}/cancel",
        f"/campaigns/{campaign.id}/bookings/{booking.id}/move",
    ]:
        assert guest.post(url, data={"slot_id": slot.id}).status_code == 400, url
    assert len(_slots(campaign)) == 4 and _slots(campaign)[0].status == "open"


def test_interviewers_get_a_calendar_request_when_a_candidate_books(
    setup, post, factories, sink, run_worker
) -> None:
    """The booking service calls interviewer_notices: each interviewer of the slot gets a
    REQUEST from the org's sender naming the candidate; a cancel by the candidate, a CANCEL."""
    from app.invitations import booking as bookings

    org, user, ada, job, template = setup
    campaign = _campaign(post, job, template)
    post(f"/campaigns/{campaign.id}/slots/generate", WINDOW | {"gen-teammates": [str(ada.id)]})
    booking = _book(factories, org, campaign, _slots(campaign)[0], "cleo@example.com")
    run_worker()
    (ics,) = _calendars(sink)["ada@example.com"]
    assert "METHOD:REQUEST" in ics and "SEQUENCE:0" in ics and "DTSTART:20300702T080000Z" in ics
    assert "SUMMARY:Interview: cleo Idate (Data Engineer)" in ics
    assert "ORGANIZER;CN=Acme:mailto:jobs@acme.example" in ics and "RSVP=FALSE" in ics
    subject = db.session.scalar(select(Message.subject).where(Message.kind == "interviewer_invite"))
    assert subject == "Interview booked: cleo Idate, Tuesday 2 July 2030, 10:00–10:45 CEST"
    sink.reset()
    bookings.cancel(org, db.session.get(Invitation, booking.invitation_id))
    db.session.commit()
    run_worker()
    (ics,) = _calendars(sink)["ada@example.com"]
    assert "METHOD:CANCEL" in ics and "SEQUENCE:1" in ics
